// The startup banner, rendered from the daemon's /v1/status answer so the foreground
// daemon and the `--daemon` parent print the same thing.
export interface BannerFacts {
  store: string;
  backup: { path: string; outcome: string } | null;
  bind: string;
  socket: string;
  pid: number;
  instance_did?: string;
}

export function renderBanner(s: BannerFacts): string {
  const backup = s.backup ? `${s.backup.path} (${s.backup.outcome})` : "none (new store)";
  return [
    `Store:    ${s.store}`,
    `Backup:   ${backup}`,
    `Bind:     ${s.bind}`,
    `Socket:   ${s.socket}`,
    ...(s.instance_did ? [`Instance: ${s.instance_did}`] : []),
    `PID:      ${s.pid}`,
    "Instance started. Run 'spl status' to verify health.",
  ].join("\n");
}
