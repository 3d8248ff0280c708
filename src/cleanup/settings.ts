/**
 * The configuration cleanup reads, gathered once per pass so a bad value
 * fails early (as a ConfigError) instead of half way through a message.
 */
import type { Config } from "../global/config/config.ts";
import { canonicalOptions, type CanonicalOptions } from "../global/address/canonical.ts";
import { virtualAliasSettings, type VirtualAliasSettings } from "./virtual-alias.ts";
import { bccSettings, type BccSettings } from "./bcc.ts";
import { canonicalMapSettings, type CanonicalMapSettings } from "./canonical-maps.ts";
import { masqueradeSettings, type MasqueradeSettings } from "./masquerade.ts";
import { receiveOverrides } from "../global/config/receive-override.ts";

export interface CleanupSettings {
  myhostname: string;
  mailName: string;
  /** Envelope rewriting: always the local context, as Postfix's cleanup does. */
  envelope: CanonicalOptions;
  /** Header rewriting for rewrite_context=local and =remote. */
  local: CanonicalOptions;
  remote: CanonicalOptions;
  alwaysAddMissingHeaders: boolean;
  undisclosedRecipientsHeader: string;
  /** Lower-case names. */
  dropHeaders: Set<string>;
  emptyAddressRecipient: string;
  enableOriginalRecipient: boolean;
  hopcountLimit: number;
  messageSizeLimit: number;
  lineLengthLimit: number;
  headerSizeLimit: number;
  headerAddressTokenLimit: number;
  verpFilter: string;
  /** cleanup_replace_stray_cr_lf (stray-cr-lf.ts). */
  replaceStrayCrLf: boolean;
  /** virtual_alias_maps (virtual-alias.ts); undefined when there are none. */
  virtualAlias?: VirtualAliasSettings;
  /** always_bcc, sender_bcc_maps, recipient_bcc_maps (bcc.ts); undefined when none is set. */
  bcc?: BccSettings;
  /** canonical_maps, sender_canonical_maps, recipient_canonical_maps (canonical-maps.ts); undefined when none is set. */
  canonicalMaps?: CanonicalMapSettings;
  /** masquerade_domains, masquerade_exceptions, masquerade_classes (masquerade.ts); undefined without masquerade_domains. */
  masquerade?: MasqueradeSettings;
}

export function cleanupSettings(config: Config): CleanupSettings {
  // receive_override_options=no_address_mappings: no canonical, masquerade, virtual alias or automatic BCC
  const mappings = !receiveOverrides(config).noAddressMappings;
  return {
    myhostname: config.str("myhostname"),
    mailName: config.str("mail_name"),
    envelope: canonicalOptions(config, "local"),
    local: canonicalOptions(config, "local"),
    remote: canonicalOptions(config, "remote"),
    alwaysAddMissingHeaders: config.bool("always_add_missing_headers"),
    undisclosedRecipientsHeader: config.str("undisclosed_recipients_header"),
    dropHeaders: new Set(config.list("message_drop_headers").map((h) => h.toLowerCase())),
    emptyAddressRecipient: config.str("empty_address_recipient"),
    enableOriginalRecipient: config.bool("enable_original_recipient"),
    hopcountLimit: config.int("hopcount_limit"),
    messageSizeLimit: config.int("message_size_limit"),
    lineLengthLimit: config.int("line_length_limit"),
    headerSizeLimit: config.int("header_size_limit"),
    headerAddressTokenLimit: config.int("header_address_token_limit"),
    verpFilter: config.str("verp_delimiter_filter"),
    replaceStrayCrLf: config.bool("cleanup_replace_stray_cr_lf"),
    ...(mappings ? optional("virtualAlias", virtualAliasSettings(config)) : {}),
    ...(mappings ? optional("bcc", bccSettings(config, canonicalOptions(config, "local"))) : {}),
    ...(mappings ? optional("canonicalMaps", canonicalMapSettings(config)) : {}),
    ...(mappings ? optional("masquerade", masqueradeSettings(config)) : {}),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
}
