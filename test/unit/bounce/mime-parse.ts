/**
 * An independent reading of a report: python3's email package parses the
 * bytes and returns the MIME tree as JSON (headers, content types and
 * parameters, the delivery-status field groups, decoded bodies, and the
 * parser's defects), so the tests check the structure with a parser that
 * shares no code with the one that wrote it.
 */

export interface MimeNode {
  headers: [string, string][];
  type: string;
  params: Record<string, string>;
  defects: string[];
  /** message/delivery-status: the per-message group, then one group per recipient. */
  groups?: [string, string][][];
  parts?: MimeNode[];
  body?: string;
}

const SCRIPT = `
import sys, json, email
from email import policy
def walk(m):
    d = {"headers": [[k, str(v)] for k, v in m.items()], "type": m.get_content_type(),
         "params": {k: v for k, v in (m.get_params() or [])[1:]}, "defects": [type(x).__name__ for x in m.defects]}
    if m.get_content_type() == "message/delivery-status":
        d["groups"] = [[[k, str(v)] for k, v in g.items()] for g in m.get_payload()]
    elif m.is_multipart():
        d["parts"] = [walk(p) for p in m.get_payload()]
    else:
        d["body"] = m.get_payload(decode=True).decode("utf-8", "replace")
    return d
print(json.dumps(walk(email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32))))
`;

export function parseMime(bytes: Uint8Array): MimeNode {
  const proc = Bun.spawnSync(["python3", "-c", SCRIPT], { stdin: bytes, stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`python3 could not parse the report: ${proc.stderr.toString()}`);
  return JSON.parse(proc.stdout.toString()) as MimeNode;
}

/** The value of the first header `name` (case-insensitive), unfolded. */
export function header(node: MimeNode | [string, string][], name: string): string | undefined {
  const list = Array.isArray(node) ? node : node.headers;
  const found = list.find(([k]) => k.toLowerCase() === name.toLowerCase());
  return found?.[1].replace(/\r?\n[ \t]+/g, " ");
}
