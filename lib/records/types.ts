// The record envelope and its stored form.

export const ACTS = ["INTEND", "DO", "KNOW", "LEARN", "GET", "PUT", "CALL", "MAP"] as const;
export const DATA_TYPES = ["SCALAR", "FORMULA", "DISTRIBUTION", "REFERENCE", "MORPHISM", "VOID"] as const;

export type Act = (typeof ACTS)[number];
export type DataType = (typeof DATA_TYPES)[number];
export type JsonObject = { [key: string]: unknown };

/** The eight envelope fields, normalised (parents sorted, defaults filled). */
export interface Envelope {
  parents: string[];
  thread: string;
  actor: string;
  act: Act;
  body: JsonObject;
  clock: number;
  data_type: DataType;
  judged_by: string | null;
}

/** A record as the store holds it: the envelope plus its id and store position. */
export interface StoredRecord extends Envelope {
  id: string;
  /** Store sequence number: the order records were accepted in. */
  sequence: number;
  /** Unix seconds when the store accepted it. */
  created_at: number;
}
