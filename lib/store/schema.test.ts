import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { FOLD_INDEX_SQL, foreignSchemaObjects, migrate } from "./schema";

function fresh(): Database {
  const db = new Database(":memory:");
  migrate(db, ":memory:");
  db.exec(FOLD_INDEX_SQL);
  return db;
}

describe("foreignSchemaObjects", () => {
  test("a store spl created holds none, however its statements were spaced or quoted", () => {
    expect(foreignSchemaObjects(fresh())).toEqual([]);
    const v1 = new Database(":memory:");
    v1.exec(`CREATE TABLE "meta" (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      create table records (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, thread TEXT NOT NULL, actor TEXT NOT NULL,
        act TEXT NOT NULL, clock INTEGER NOT NULL, data_type TEXT NOT NULL, judged_by TEXT, parents TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE UNIQUE INDEX records_thread_actor_clock ON records (thread,actor,clock);`);
    expect(foreignSchemaObjects(v1)).toEqual([]);
  });

  test("triggers, views, other tables and indexes, and spl's own under another definition are named", () => {
    const db = fresh();
    db.exec("CREATE TRIGGER t AFTER INSERT ON records BEGIN DELETE FROM records WHERE seq = NEW.seq; END");
    db.exec("CREATE VIEW v AS SELECT 1");
    db.exec("CREATE TABLE extra (x)");
    db.exec("DROP INDEX records_actor_seq; CREATE UNIQUE INDEX records_actor_seq ON records(actor)");
    expect(foreignSchemaObjects(db)).toEqual(["index records_actor_seq on records (not as spl defines it)", "table extra", "trigger t on records", "view v"]);
  });
});
