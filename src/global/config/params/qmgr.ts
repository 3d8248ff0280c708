/** Queue manager scheduling parameters beyond the basics in queue.ts. */
import { p, type ParamDef } from "../param-def.ts";

const QMGR = ["qmgr"];

export const qmgrParams: ParamDef[] = [
  p("local_destination_concurrency_limit", "int", "2", "Parallel deliveries to one local recipient", QMGR),
  p("local_destination_recipient_limit", "int", "1", "Recipients per local delivery", QMGR),
  p("smtp_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel SMTP deliveries to one destination", QMGR),
  p("relay_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel relay deliveries to one destination", QMGR),
  p("relay_destination_recipient_limit", "int", "$default_destination_recipient_limit", "Recipients per relay delivery", QMGR),
  p("delay_logging_resolution_limit", "int", "2", "Digits after the decimal point in logged delays", ["qmgr", "local", "smtp"]),
];
