/**
 * postern's DNS: one stub resolver for every role (resolver.ts), the
 * helpers mail needs (MX, addresses, client names, DNS lists, TLSA), the
 * adapter mailauth takes, and the settings from the configuration. See
 * docs/dns.md.
 */
export { Resolver, type ResolverOptions } from "./resolver.ts";
export { resolverFromConfig, resolverOptions, hostLookupMethods, type HostLookupMethod } from "./settings.ts";
export type { DnsResult, DnsOk, DnsFailure, DnsQuerier, QueryOptions } from "./result.ts";
export { isTemporary, isNotFound, dnsFailureText, nameServiceError } from "./result.ts";
export type { DnsRecord, RecordOf, RRType, MxRecord, TxtRecord, TlsaRecord } from "./records.ts";
export { txtRecordText } from "./records.ts";
export { lookupMx, orderMxHosts, type MxResult, type MxHost } from "./mx.ts";
export { lookupAddresses, familiesFromInetProtocols, type AddressFamily, type AddressResult, type HostAddress } from "./addresses.ts";
export { lookupHostAddresses, nativeLookupAddresses } from "./host-lookup.ts";
export { reverseLookup, isValidHostname, type ClientNames, type NameStatus } from "./reverse.ts";
export { rblLookup, rhsblLookup, type DnsblResult } from "./dnsbl.ts";
export { lookupTlsa, tlsaName } from "./tlsa.ts";
export { mailauthResolver, type MailauthResolver } from "./mailauth-resolver.ts";
export { reverseName, canonicalName, sameName } from "./names.ts";
export { parseNameServer, type NameServer } from "./resolv-conf.ts";
