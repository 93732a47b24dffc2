// Host names and addresses, for whoever needs to tell loopback from the network (the gate, /health,
// the fleet's checks of advertised URLs).

/** Whether a host name or address (IPv6 in brackets or not) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}
