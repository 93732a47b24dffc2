// Every file location spl uses, derived from the environment at call time so tests
// and fleets can point SYNCROPEL_HOME anywhere.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export function userHome(): string {
  return process.env.HOME || homedir();
}

export function splHome(): string {
  return resolve(process.env.SYNCROPEL_HOME || join(userHome(), ".syncro"));
}

export interface HomePaths {
  home: string;
  store: string;
  config: string;
  runDir: string;
  pidFile: string;
  socket: string;
  logsDir: string;
  log: string;
  daemonOut: string;
  secretsDir: string;
  token: string;
}

export function homePaths(home = splHome()): HomePaths {
  return {
    home,
    store: join(home, "hub.db"),
    config: join(home, "config.toml"),
    runDir: join(home, "run"),
    pidFile: join(home, "run", "spl.pid"),
    socket: join(home, "run", "spl.sock"),
    logsDir: join(home, "logs"),
    log: join(home, "logs", "spl.log"),
    // stdout/stderr of a detached daemon: where a crash before logging starts ends up.
    daemonOut: join(home, "logs", "daemon.out"),
    secretsDir: join(home, "secrets"),
    token: join(home, "token"),
  };
}

/** Root of all startup backups; outside the home so `rm -rf ~/.syncro` keeps them. */
export function backupsRoot(): string {
  if (process.env.SPL_BACKUP_DIR) return resolve(process.env.SPL_BACKUP_DIR);
  const data = process.env.XDG_DATA_HOME || join(userHome(), ".local", "share");
  return join(data, "syncropel", "backups");
}

export const storeUrl = (storePath: string) => `sqlite://${storePath}`;
