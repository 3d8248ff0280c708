/**
 * The `local` daemon role: `postern local -c DIR`, started by the master.
 * It stays root (to deliver as each recipient through its workers) and
 * answers the queue manager's delivery requests on private/local, one JSON
 * line `{request}` -> `{results}` each. SIGHUP builds a new agent from the
 * re-read configuration; the old one finishes what it started, then its
 * workers stop and its tables close (src/global/config/generation.ts). The master
 * starts it when a connection waits on private/local; it exits after
 * max_idle with no connection open and no delivery in flight, stopping its
 * workers (src/daemon/idle-exit.ts).
 *
 * Runs as root on a system install, as the invoking user in unprivileged
 * mode. Only mail_owner can reach the socket (private/ is 0700); requests
 * are still checked field by field, and the queue file must be a queue
 * file of this queue.
 */
import { resolve } from "node:path";
import { startDaemon } from "../daemon/skeleton.ts";
import { workDone } from "../util/young-garbage.ts";
import type { DeliveryRequest } from "../global/delivery/types.ts";
import { serveJsonLines, stopServing, type JsonObject } from "../global/ipc/json-lines.ts";
import { serviceSocket, serviceSocketPath } from "../global/ipc/service-sockets.ts";
import { isQueueId } from "../global/queue/names.ts";
import type { Config } from "../global/config/config.ts";
import { holdConfig, onConfigReleased } from "../global/config/generation.ts";
import { log } from "../util/log.ts";
import { createVirtualAgent } from "../virtual/agent.ts";
import { createLocalAgent, createPerformer, type LocalAgent } from "./agent.ts";
import { createVirtualHost } from "./virtual-host.ts";
import { createPipeAgent } from "../pipe/agent.ts";
import { pipeServices } from "../global/config/services.ts";
import { createPipeHost } from "./pipe-host.ts";

/** The agents this service runs: local(8), virtual(8) for the `virtual` transport, and pipe(8) for each pipe service (docs/architecture.md). */
export interface ServedAgents {
  local: LocalAgent;
  virtual: LocalAgent;
  /** By transport name: the enabled `role = "pipe"` services. */
  pipes: Map<string, LocalAgent>;
}

export function createServedAgents(config: Config): ServedAgents {
  const local = createLocalAgent(config);
  let virtual: LocalAgent;
  try {
    virtual = createVirtualAgent(config, { host: createVirtualHost(config, createPerformer(config)), queueDirectory: config.str("queue_directory") });
  } catch (err) {
    void local.close();
    throw err;
  }
  const pipes = new Map<string, LocalAgent>();
  for (const [name, service] of pipeServices(config.services())) {
    pipes.set(name, createPipeAgent(config, name, service, { host: createPipeHost(config, createPerformer(config)), queueDirectory: config.str("queue_directory") }));
  }
  return { local, virtual, pipes };
}

function closeAgents(a: ServedAgents): Promise<unknown> {
  return Promise.all([a.local.close(), a.virtual.close(), ...[...a.pipes.values()].map((p) => p.close())]);
}

/** The agent for a request's transport: a pipe service by its name, virtual, else local. */
export function servingAgent(a: ServedAgents, transport: string): LocalAgent {
  return a.pipes.get(transport) ?? (transport === "virtual" ? a.virtual : a.local);
}

const NOTIFY = new Set(["NEVER", "SUCCESS", "FAILURE", "DELAY"]);

/** The request, if every field has the type and shape the contract says. */
export function validateRequest(raw: unknown, queueDirectory: string): DeliveryRequest {
  const r = raw as Record<string, unknown>;
  const bad = (what: string): never => {
    throw new Error(`invalid delivery request: ${what}`);
  };
  if (!r || typeof r !== "object") bad("not an object");
  if (typeof r.queueId !== "string" || !isQueueId(r.queueId)) bad("queueId");
  if (typeof r.queueFile !== "string") bad("queueFile");
  const file = resolve(r.queueFile as string);
  const top = resolve(queueDirectory);
  if (!file.startsWith(top + "/") || file.split("/").at(-1) !== r.queueId) bad("queueFile is not a file of this queue");
  if (typeof r.sender !== "string") bad("sender");
  if (typeof r.arrivalTime !== "number") bad("arrivalTime");
  if (!Array.isArray(r.recipients) || r.recipients.length === 0) bad("recipients");
  for (const rc of r.recipients as Record<string, unknown>[]) {
    if (!rc || typeof rc !== "object" || !Number.isInteger(rc.index) || typeof rc.address !== "string") bad("recipient");
    if (rc.original !== undefined && typeof rc.original !== "string") bad("recipient original");
    if (rc.orcpt !== undefined && typeof rc.orcpt !== "string") bad("recipient orcpt");
    if (rc.notify !== undefined && (!Array.isArray(rc.notify) || !rc.notify.every((n) => NOTIFY.has(n as string)))) bad("recipient notify");
  }
  if (r.verify !== undefined && typeof r.verify !== "boolean") bad("verify");
  const attributes = (r.attributes ?? {}) as Record<string, unknown>;
  if (typeof attributes !== "object" || Array.isArray(attributes) || !Object.values(attributes).every((v) => typeof v === "string")) bad("attributes");
  return {
    queueId: r.queueId as string,
    queueFile: file,
    sender: r.sender as string,
    arrivalTime: r.arrivalTime as number,
    transport: typeof r.transport === "string" ? r.transport : "local",
    nexthop: typeof r.nexthop === "string" ? r.nexthop : "",
    recipients: r.recipients as DeliveryRequest["recipients"],
    attributes: attributes as Record<string, string>,
    // sendmail -bv: dropping this flag would deliver a probe, so it is passed on explicitly
    ...(r.verify === true ? { verify: true } : {}),
  };
}

export async function main(args: string[]): Promise<number> {
  let served: { agents: ServedAgents; config: Config } | undefined;
  /** The agents of a configuration; their workers stop once a reload retired it and its deliveries ended. */
  const serve = (c: Config) => {
    const agents = createServedAgents(c);
    onConfigReleased(c, () => void closeAgents(agents));
    return { agents, config: c };
  };
  const ctx = await startDaemon(args, {
    // stays root: the service table says so (SERVICE_TABLE.local.runsAs)
    role: "local",
    jit: "reluctant",
    // a configuration the agents cannot be built from throws: the skeleton keeps the old one
    onReload: (c) => {
      served = serve(c);
    },
  });
  served ??= serve(ctx.config);
  const config = ctx.config;
  // private/ (0700, mail_owner) is the guard, as with Postfix's private sockets; the socket is the
  // master's (passed on), or made with its mode at bind time, never chmod-ed by path: root must not
  // act on a name in a directory mail_owner can write
  const { mode } = serviceSocket("local");
  const server = await serveJsonLines(serviceSocketPath(config, "local"), mode, async (req): Promise<JsonObject> => {
    const { agents, config: current } = served!;
    const request = validateRequest(req.request, current.str("queue_directory"));
    // the delivery keeps its configuration's agents and tables to its end, a reload or not
    const release = holdConfig(current);
    try {
      return { results: await servingAgent(agents, request.transport).deliver(request) };
    } finally {
      release();
      workDone();
    }
  }, ctx.listenFd, ctx.activity);
  await ctx.stopped;
  // idle: no delivery in flight and no connection open; one accepted at the last moment is still served
  if (ctx.stoppedBy() === "idle") await stopServing(server);
  else server.close();
  await closeAgents(served.agents);
  if (ctx.stoppedBy() !== "idle") log.info("stopped");
  return 0;
}
