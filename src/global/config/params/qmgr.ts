/** Queue manager scheduling parameters beyond the basics in queue.ts. */
import { p, type ParamDef } from "../param-def.ts";

const QMGR = ["qmgr"];

export const qmgrParams = (): ParamDef[] => [
  p("local_destination_concurrency_limit", "int", "2", "Parallel deliveries to one local recipient", QMGR),
  p("local_destination_recipient_limit", "int", "1", "Recipients per local delivery", QMGR),
  p("smtp_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel SMTP deliveries to one destination", QMGR),
  p("relay_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel relay deliveries to one destination", QMGR),
  p("relay_destination_recipient_limit", "int", "$default_destination_recipient_limit", "Recipients per relay delivery", QMGR),
  p("virtual_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel virtual mailbox deliveries to one domain", QMGR),
  p("virtual_destination_recipient_limit", "int", "$default_destination_recipient_limit", "Recipients per virtual mailbox delivery", QMGR),
  // Postfix gives each delivery transport a maxproc in master.cf; postern's delivery transports have no
  // service table, so the queue manager reads these instead (src/qmgr/destinations.ts)
  p("local_process_limit", "int", "$default_process_limit", "Parallel deliveries of the local transport in all", QMGR),
  p("smtp_process_limit", "int", "$default_process_limit", "Parallel deliveries of the smtp transport in all", QMGR),
  p("relay_process_limit", "int", "$default_process_limit", "Parallel deliveries of the relay transport in all", QMGR),
  p("lmtp_process_limit", "int", "$default_process_limit", "Parallel deliveries of the lmtp transport in all", QMGR),
  p("virtual_process_limit", "int", "$default_process_limit", "Parallel deliveries of the virtual transport in all", QMGR),
  p("delay_logging_resolution_limit", "int", "2", "Digits after the decimal point in logged delays", ["qmgr", "local", "smtp"]),
];
