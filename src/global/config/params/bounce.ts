/**
 * Delivery status notifications (src/bounce/) beyond the ones in
 * queue.ts (notify_classes, bounce_size_limit and the *_notice_recipient
 * parameters).
 */
import { p, type ParamDef } from "../param-def.ts";

const BOUNCE = ["bounce", "qmgr"];

export const bounceParams = (): ParamDef[] => [
  p("bounce_template_file", "str", "", "File with templates that replace the built-in notification texts (bounce(5) format)", BOUNCE),
  p("double_bounce_sender", "str", "double-bounce", "Sender of postmaster notices; mail to it that cannot be delivered is dropped", [...BOUNCE, "local"]),
];
