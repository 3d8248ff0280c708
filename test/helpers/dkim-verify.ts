/**
 * An independent DKIM verifier for tests: Debian's python3-dkim (dkimpy)
 * run on a message's bytes, with its DNS answered from the records the
 * test gives (no packet sent). Every DKIM-Signature of the message is
 * checked; `results` has one boolean per signature, top first. verifyArc
 * validates an ARC chain the same way.
 */
import { PYTHON } from "./python-sink.ts";

const SCRIPT = `
import sys, json, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = records.get(n.rstrip(".").lower())
    return v.encode() if v is not None else None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
count = sum(1 for line in msg.split(b"\\r\\n") if line.lower().startswith(b"dkim-signature:"))
out = []
for i in range(count):
    try:
        out.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
    except Exception as e:
        out.append(False)
        sys.stderr.write("signature %d: %s\\n" % (i, e))
print(json.dumps(out))
`;

export interface DkimVerification {
  /** One entry per DKIM-Signature header, top first. */
  results: boolean[];
  stderr: string;
}

/** `records`: TXT values by owner name ("s1._domainkey.example.test"). The message has CRLF line ends. */
export function verifyDkim(message: Buffer, records: Record<string, string>): DkimVerification {
  const r = Bun.spawnSync([PYTHON, "-c", SCRIPT, JSON.stringify(records)], { stdin: message, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`python3-dkim failed (Debian package python3-dkim): ${r.stderr.toString()}`);
  return { results: JSON.parse(r.stdout.toString()) as boolean[], stderr: r.stderr.toString() };
}

const ARC_SCRIPT = `
import sys, json, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = records.get(n.rstrip(".").lower())
    return v.encode() if v is not None else None
cv, results, reason = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
print(json.dumps({"cv": cv.decode(), "reason": reason}))
`;

/** python3-dkim's ARC chain validation of a message (CRLF line ends): its cv ("pass", "fail", "none") and reason. */
export function verifyArc(message: Buffer, records: Record<string, string>): { cv: string; reason: string } {
  const r = Bun.spawnSync([PYTHON, "-c", ARC_SCRIPT, JSON.stringify(records)], { stdin: message, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`python3-dkim failed (Debian package python3-dkim): ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as { cv: string; reason: string };
}
