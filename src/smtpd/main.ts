/**
 * The smtpd role: `postern smtpd -c DIR --service NAME`, started by the
 * master for each enabled service of the services table (smtp, submission,
 * smtps, ...): on demand, when a client connects to one of the sockets the
 * master bound for the service and passed on (descriptors 3, 4, ...: `-s
 * COUNT`), and gone after max_idle without a session; or, for a service
 * the master does not hold sockets for (src/master/smtpd-sockets.ts: a host
 * name in `listen`), from the start, binding its addresses itself
 * (SO_REUSEPORT). Certificates by name (tls_server_sni_maps) are served
 * through node:net on the same sockets.
 *
 * As root it reads the service's TLS key and the DKIM keys (and binds, if
 * it must), then drops to mail_owner before the first connection is
 * served; each process serves many sessions at once. The service's table overrides main parameters, as
 * master.cf's -o does. SIGHUP re-reads the configuration for new sessions;
 * SIGTERM closes the listeners and lets sessions in progress finish for a
 * few seconds.
 *
 * `postern smtpd -S` is the stand-alone mode `sendmail -bs` runs, as
 * Postfix's sendmail execs `smtpd -S`: one session on stdin and stdout, as the
 * invoking user, no daemon, no privileges (standalone.ts).
 */
import { log } from "../util/log.ts";
import { ExitError, EX_USAGE, EX_CONFIG } from "../util/sysexits.ts";
import { listenConnections, type Listener } from "../util/net/connection.ts";
import { loadConfig, type Config } from "../global/config/config.ts";
import { getopt } from "../util/getopt.ts";
import type { ServiceDef } from "../global/config/services.ts";
import { setupLog } from "../global/system/log-setup.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { listenAddresses } from "../global/config/listen-addresses.ts";
import { SmtpService, type ServerConnection } from "./service.ts";
import type { Place } from "./session-places.ts";
import { loadDkimKeys } from "../global/dkim/keys.ts";
import { loadServerTls } from "./tls.ts";

/** Input read from a client before its session starts; then its socket is paused. */
const HELD_WINDOW = 64 * 1024;

function parseArgs(args: string[]): { service: string; rest: string[] } {
  let service = "smtp";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--service") {
      const v = args[++i];
      if (v === undefined) throw new ExitError(EX_USAGE, "option --service requires a service name; usage: postern smtpd [-c config_dir] [--service name]");
      service = v;
    } else if (a.startsWith("--service=")) service = a.slice("--service=".length);
    else rest.push(a);
  }
  return { service, rest };
}

/** `postern smtpd -S [-c DIR]`: one session on stdin/stdout as the invoking user (sendmail -bs). */
async function standAloneMain(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "c:");
  } catch (err) {
    throw new ExitError(EX_USAGE, `${(err as Error).message}; usage: postern smtpd -S [-c config_dir]`);
  }
  const config = loadConfig(parsed.options.find(([o]) => o === "c")?.[1]);
  const { smtpMode } = await import("./standalone.ts");
  return smtpMode(config);
}

function serviceDef(config: Config, name: string): ServiceDef {
  const def = config.services().find((s) => s.name === name);
  if (!def) throw new ExitError(EX_CONFIG, `unknown service "${name}": no [services.${name}] table`);
  return def;
}

export async function main(args: string[]): Promise<number> {
  if (args[0] === "-S") return standAloneMain(args.slice(1));
  const { service: name, rest } = parseArgs(args);
  let service: SmtpService | undefined;
  const listeners: Listener[] = [];
  let dropped = false;
  const early: Array<[ServerConnection, Uint8Array[], () => void]> = [];
  let implicitTls = false;
  // admitted connections and their places, served or waiting (given back when the session ends, or when it closes before)
  const admitted = new WeakMap<ServerConnection, Place>();
  // started on demand: every open connection keeps the process (IdleExit); those opened before the
  // daemon's context exists are counted and handed over to it
  let activity: { begin(): void; end(): void } | undefined;
  let openedEarly = 0;
  const opened = (conn: ServerConnection): boolean => {
    const place = service!.admit(conn, { plaintext: !implicitTls });
    if (!place) return false;
    admitted.set(conn, place);
    if (activity) activity.begin();
    else openedEarly++;
    conn.onClose(() => {
      place.release();
      if (activity) activity.end();
      else openedEarly--;
    });
    // implicit TLS: the handshake gets smtpd_starttls_timeout, as in Postfix
    if (implicitTls) conn.setIdleTimeout(service!.handshakeSeconds, () => conn.destroy());
    return true;
  };
  const accept = (conn: ServerConnection) => {
    const place = admitted.get(conn);
    if (!place) {
      conn.destroy();
      return;
    }
    // until its session starts (after a wait for a place, and the reverse lookup) a client's early
    // words are kept, up to a window; then the socket is paused, so nothing more piles up here
    const held: Uint8Array[] = [];
    let heldBytes = 0;
    conn.onData((chunk) => {
      held.push(Buffer.from(chunk));
      heldBytes += chunk.length;
      if (heldBytes >= HELD_WINDOW) conn.pause(true);
    });
    // a client waiting for a place waits as long as it likes (the wait is bounded in number), as in
    // Postfix's listen queue; its session's timeouts start with the session
    if (!place.held) conn.setIdleTimeout(0, () => {});
    const release = () => place.release();
    place.whenHeld(() => {
      if (dropped) void service!.serve(conn, held, release);
      else early.push([conn, held, release]);
    });
  };

  const ctx = await startDaemon(rest, {
    role: "smtpd",
    async beforeDrop(base, listenFds) {
      const def = serviceDef(base, name);
      const config = base.withOverrides(def.overrides);
      await setupLog(config, { role: "smtpd" });
      const problems = config.validate();
      if (problems.length) throw problems[0]!;
      const tls = loadServerTls(config, (t) => log.warn(t));
      // DKIM keys are root's, as the TLS key is: read now, kept for the process's life
      const dkimKeys = loadDkimKeys(config.str("dkim_key_directory"), (t) => log.warn(t));
      service = new SmtpService(def.name, config, tls, def.processLimit, dkimKeys);
      const wrapper = config.bool("smtpd_tls_wrappermode");
      implicitTls = wrapper && tls.options !== undefined;
      // certificates by name (SNI) need node:tls: such a service listens through sni.ts
      let sni: import("./sni.ts").SniContexts | undefined;
      if (tls.options && config.list("tls_server_sni_maps").length) {
        const { SniContexts } = await import("./sni.ts");
        sni = new SniContexts(config, tls.options);
        await sni.preload();
      }
      const addresses = listenAddresses(config, def.listen);
      if (listenFds.length) {
        // the master bound them, in listenAddresses' order (src/master/smtpd-sockets.ts)
        if (listenFds.length !== addresses.length) throw new ExitError(EX_USAGE, `service ${def.name}: the master passed ${listenFds.length} listening sockets for ${addresses.length} addresses`);
        for (const [i, fd] of listenFds.entries()) {
          const a = addresses[i]!;
          if (sni) {
            const { listenWithSni } = await import("./sni.ts");
            listeners.push(await listenWithSni({ hostname: a.hostname, port: a.port, fd, implicitTls: wrapper, onOpen: opened }, sni, accept));
          } else listeners.push(listenConnections({ hostname: a.hostname, port: a.port, fd, onOpen: opened, ...(wrapper && tls.options ? { tls: tls.options } : {}) }, accept));
        }
        return;
      }
      for (const a of addresses) {
        try {
          if (sni) {
            const { listenWithSni } = await import("./sni.ts");
            listeners.push(await listenWithSni({ hostname: a.hostname, port: a.port, implicitTls: wrapper, onOpen: opened }, sni, accept));
          } else listeners.push(listenConnections({ hostname: a.hostname, port: a.port, reusePort: true, onOpen: opened, ...(wrapper && tls.options ? { tls: tls.options } : {}) }, accept));
        } catch (err) {
          throw new ExitError(EX_CONFIG, `service ${def.name}: cannot listen on ${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}: ${(err as Error).message}`);
        }
      }
    },
    // a configuration the service cannot be built from throws: the skeleton keeps the old one
    onReload(base) {
      const def = serviceDef(base, name);
      service?.reload(base.withOverrides(def.overrides), def.processLimit);
    },
  });
  dropped = true;
  if (ctx.activity) {
    activity = ctx.activity;
    for (; openedEarly > 0; openedEarly--) activity.begin();
  }
  for (const [conn, held, release] of early.splice(0)) void service!.serve(conn, held, release);

  await ctx.stopped;
  for (const l of listeners) l.stop();
  // as Postfix's listen queue goes with the listener, clients still waiting get no session
  service!.closeLine();
  // sessions in progress get a few seconds to finish their transaction
  const deadline = Date.now() + 5000;
  while (service!.sessions.size > 0 && Date.now() < deadline) await Bun.sleep(100);
  return 0;
}
