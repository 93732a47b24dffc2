// Host names and addresses, for whoever needs to tell loopback from the network (the gate, /health,
// the fleet's checks of advertised URLs), and what a failed connection failed on.

/** Whether a host name or address (IPv6 in brackets or not) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** Whether a failed connection failed on TLS: a certificate not trusted, or not for this host name. */
export function isTlsFailure(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME|TLS|SSL/i.test(`${e?.code ?? ""} ${e?.message ?? ""}`);
}
