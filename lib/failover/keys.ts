// Where the fleet's small current state lives in etcd, under [fleet.etcd] prefix P (README
// "Automatic failover with etcd", ARCHITECTURE.md "Automatic failover"):
//   P/coordinator                      the elected coordinator {did, name, endpoint, since_unix, ready},
//                                      on its lease; the epoch is the key's create revision
//   P/control/emergency                the latest emergency_stop / emergency_clear record (wire JSON)
//   P/control/ns/<namespace>           the latest freeze / unfreeze record of that namespace
//   P/members/<did>                    each member {did, name, endpoint, version, candidate}, on its lease
//   P/fanouts/<parent>/r/<record id>   the records of a pending fan-out (parent, spawns, reports,
//                                      retries, cancels), as wire JSON
//   P/fanouts/<parent>/a/<index>/<n>   the claim of attempt n of child index {worker, name, coordinator_url}
//   P/fanouts/<parent>/join            a joined fan-out's join record, on a week-long lease (then gone)
//   P/founded                          written by the first coordinator of the fleet: a member with an
//                                      empty registry may campaign only while it is absent
//   P/epoch_floor                      written only to move the revision past epochs taken by config
// `P/c` covers both the coordinator key and the control keys: every member watches that one range.
export function keys(prefix: string) {
  const fanout = (parent: string) => `${prefix}/fanouts/${parent}/`;
  return {
    coordinator: `${prefix}/coordinator`,
    /** The range every member watches: the coordinator and the control keys. */
    watched: `${prefix}/c`,
    control: `${prefix}/control/`,
    emergency: `${prefix}/control/emergency`,
    namespace: (ns: string) => `${prefix}/control/ns/${ns}`,
    members: `${prefix}/members/`,
    member: (did: string) => `${prefix}/members/${did}`,
    fanouts: `${prefix}/fanouts/`,
    fanout,
    record: (parent: string, id: string) => `${fanout(parent)}r/${id}`,
    records: (parent: string) => `${fanout(parent)}r/`,
    claim: (parent: string, index: number, n: number) => `${fanout(parent)}a/${index}/${n}`,
    claims: (parent: string) => `${fanout(parent)}a/`,
    join: (parent: string) => `${fanout(parent)}join`,
    founded: `${prefix}/founded`,
    epochFloor: `${prefix}/epoch_floor`,
  };
}

export type Keys = ReturnType<typeof keys>;

/** What a key under P/fanouts/ is: the fan-out's parent record id and the kind of entry. */
export function fanoutEntry(k: Keys, key: string): { parent: string; kind: "r" | "a" | "join"; rest: string } | null {
  if (!key.startsWith(k.fanouts)) return null;
  const [parent, kind, ...rest] = key.slice(k.fanouts.length).split("/");
  if (!parent || (kind !== "r" && kind !== "a" && kind !== "join")) return null;
  return { parent, kind, rest: rest.join("/") };
}

export const parseJson = (text: string): Record<string, any> | null => {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
};
