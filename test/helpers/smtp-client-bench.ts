/**
 * Shared set-up for the SMTP/LMTP client agent tests: a private
 * configuration and queue directory, queue files committed with the
 * queue-file API, the agent with a resolver pointed at the fake DNS server,
 * and the log lines the agent wrote (to a file, read back); and
 * `useAgentTests`, the per-test trio (a fake server, a bench, scratch
 * directories) each test file used to write for itself, all stopped or
 * removed after each test. Runs in the test process as whoever runs the
 * tests; it trusts the test's own input and talks only to 127.0.0.1.
 */
import { afterEach } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/global/config/config.ts";
import type { DeliveryRecipient, DeliveryRequest, RecipientResult } from "../../src/global/delivery/types.ts";
import { Resolver } from "../../src/global/dns/resolver.ts";
import { encodeQueueFile, type NotifyKeyword } from "../../src/global/queue/format.ts";
import { createSmtpAgent, type SmtpAgent } from "../../src/smtp/agent.ts";
import { closeAllTables } from "../../src/global/tables/open-table.ts";
import { log } from "../../src/util/log.ts";
import type { FakeDns } from "./fake-dns.ts";
import { ROOT } from "./run.ts";
import { FakeSmtpServer, type FakeSmtpOptions } from "./smtp-server.ts";

/** The repository root (test/unit/smtp/agent-harness.ts exported it). */
export { ROOT };

export const CERT_FILE = join(ROOT, "test/fixtures/tls/localhost.crt");
export const CERT = readFileSync(CERT_FILE, "utf8");
export const KEY = readFileSync(join(ROOT, "test/fixtures/tls/localhost.key"), "utf8");

export type Params = Record<string, string | number | boolean>;

export interface MessageSpec {
  sender?: string;
  recipients?: Array<string | { address: string; notify?: NotifyKeyword[]; orcpt?: string; original?: string }>;
  content?: string | Buffer;
  attributes?: Record<string, string>;
  transport?: string;
  nexthop?: string;
}

export class AgentBench {
  readonly dir: string;
  readonly logFile: string;
  #agent: SmtpAgent | undefined;
  #seq = 0;
  #params: Params;
  #dns: FakeDns | undefined;
  #lmtp: boolean;

  constructor(params: Params = {}, opts: { dns?: FakeDns; lmtp?: boolean } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "postern-smtp-agent-"));
    this.logFile = join(this.dir, "maillog");
    this.#params = params;
    this.#dns = opts.dns;
    this.#lmtp = opts.lmtp ?? false;
    writeFileSync(this.logFile, "");
    log.configure({ tag: "postern/qmgr", file: this.logFile, stderrProgram: undefined });
  }

  get agent(): SmtpAgent {
    if (!this.#agent) {
      const base: Params = {
        queue_directory: this.dir,
        myhostname: "client.example.test",
        mydomain: "example.test",
        inet_protocols: "ipv4",
        inet_interfaces: "127.0.0.1",
        smtp_tls_loglevel: 1,
        lmtp_tls_loglevel: 1,
      };
      const all = { ...base, ...this.#params };
      const text = Object.entries(all)
        .map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
        .join("\n");
      writeFileSync(join(this.dir, "postern.toml"), `${text}\n`);
      const config = loadConfig(this.dir);
      const resolver = this.#dns ? new Resolver(this.#dns.resolverOptions()) : new Resolver({ servers: [{ address: "127.0.0.1", port: 9, family: 4 }], timeoutMs: 200, attempts: 1 });
      this.#agent = createSmtpAgent(config, { resolver, lmtp: this.#lmtp, random: () => 0 });
    }
    return this.#agent;
  }

  /** Commits a queue file and returns the delivery request for it. */
  request(spec: MessageSpec = {}): DeliveryRequest {
    const id = `AGENT${++this.#seq}`;
    const path = join(this.dir, id);
    const recipients = (spec.recipients ?? ["rcpt@example.org"]).map((r) => (typeof r === "string" ? { address: r } : r));
    const sender = spec.sender ?? "sender@example.test";
    const attributes = spec.attributes ?? {};
    const content = spec.content ?? `From: ${sender}\nSubject: test ${id}\n\nHello.\n`;
    writeFileSync(path, encodeQueueFile({ arrivalTime: Date.now(), sender, recipients, attributes, content: typeof content === "string" ? Buffer.from(content) : content }));
    const reqRecipients: DeliveryRecipient[] = recipients.map((r, index) => ({ index, address: r.address, ...(r.notify ? { notify: r.notify } : {}), ...(r.orcpt ? { orcpt: r.orcpt } : {}), ...(r.original ? { original: r.original } : {}) }));
    return { queueId: id, queueFile: path, sender, arrivalTime: Date.now(), transport: spec.transport ?? (this.#lmtp ? "lmtp" : "smtp"), nexthop: spec.nexthop ?? "", recipients: reqRecipients, attributes };
  }

  async deliver(spec: MessageSpec = {}): Promise<RecipientResult[]> {
    return this.agent.deliver(this.request(spec));
  }

  logLines(): string[] {
    return readFileSync(this.logFile, "utf8").split("\n").filter(Boolean);
  }

  async close(): Promise<void> {
    await this.#agent?.close();
    closeAllTables();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What a test file's agent tests start from: defaults for every server and bench it makes. */
export interface AgentTestDefaults {
  /** Options every fake server starts with (a test's own options override them). */
  server?: FakeSmtpOptions;
  /** Parameters every bench starts with (a test's own parameters override them). */
  params?: Params;
  /** The agent speaks LMTP. */
  lmtp?: boolean;
  /** The fake DNS server the agent's resolver asks. */
  dns?: FakeDns;
}

export interface AgentTests {
  /** A fake SMTP (or LMTP) server on 127.0.0.1, stopped after the test. */
  server(opts?: FakeSmtpOptions): FakeSmtpServer;
  /** An agent bench, closed (agent, tables, directory) after the test. */
  bench(params?: Params, opts?: { lmtp?: boolean }): AgentBench;
  /** A private directory, removed after the test. */
  scratch(prefix?: string): string;
  /** Runs `cleanup` after the test, before everything made earlier. */
  defer(cleanup: () => unknown): void;
}

/**
 * The server, bench and scratch directories of one test file's tests, all
 * undone in reverse order after each test. Call once at the top of the file.
 */
export function useAgentTests(defaults: AgentTestDefaults = {}): AgentTests {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const defer = (cleanup: () => unknown) => {
    cleanups.push(cleanup);
  };
  return {
    server(opts = {}) {
      const s = FakeSmtpServer.start({ ...(defaults.lmtp ? { lmtp: true } : {}), ...defaults.server, ...opts });
      defer(() => s.stop());
      return s;
    },
    bench(params = {}, opts = {}) {
      const b = new AgentBench({ ...defaults.params, ...params }, { lmtp: opts.lmtp ?? defaults.lmtp ?? false, ...(defaults.dns ? { dns: defaults.dns } : {}) });
      defer(() => b.close());
      return b;
    },
    scratch(prefix = "postern-smtp-test-") {
      const d = mkdtempSync(join(tmpdir(), prefix));
      defer(() => rmSync(d, { recursive: true, force: true }));
      return d;
    },
    defer,
  };
}
