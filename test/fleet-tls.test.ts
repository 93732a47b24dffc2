// A fleet over HTTPS on one host (README "Fleet": TLS), for where network namespaces cannot be made
// (test/fleet-hosts.test.ts does it across hosts): a private CA made by openssl, the coordinator
// serving HTTPS, a worker joining with --ca-file and beating over TLS; a member that trusts
// another CA is refused with the certificate named, and plain HTTP to an HTTPS listener fails.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Instance, waitFor } from "./harness";

const why = Bun.which("openssl") ? null : "no openssl to make the private CA";
if (why) console.log(`skipping the TLS fleet test: ${why}`);
const pki = mkdtempSync(join(tmpdir(), "spl-tls-"));
const coord = new Instance();
const worker = new Instance();
const stranger = new Instance();

afterAll(async () => {
  for (const i of [worker, coord]) await i.stop();
  rmSync(pki, { recursive: true, force: true });
});

function openssl(args: string[]) {
  const r = Bun.spawnSync(["openssl", ...args], { cwd: pki, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

function ca(name: string) {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`]);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-node.key`, "-out", `${name}-node.csr`, "-subj", "/CN=127.0.0.1"]);
  writeFileSync(join(pki, "ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl(["x509", "-req", "-in", `${name}-node.csr`, "-CA", `${name}.pem`, "-CAkey", `${name}.key`, "-CAcreateserial", "-out", `${name}-node.pem`, "-days", "2", "-extfile", "ext"]);
}

/** [server] port and the TLS files in a home's config.toml. */
function serveHttps(i: Instance, certs: string) {
  const p = i.path("config.toml");
  writeFileSync(p, readFileSync(p, "utf8").replace(/^\[server\]\n(host = .*\n)port = \d+\n/m, `[server]\n$1port = ${i.port}\ntls_cert_file = "${join(pki, `${certs}-node.pem`)}"\ntls_key_file = "${join(pki, `${certs}-node.key`)}"\n`), { mode: 0o600 });
}

describe.skipIf(why !== null)(`members over HTTPS with a private CA${why ? ` (skipped: ${why})` : ""}`, () => {
  test("coordinate and join over HTTPS; the worker beats over TLS; plain HTTP to the listener fails; a member trusting another CA is refused naming the certificate", async () => {
    ca("fleet-ca");
    ca("other-ca");
    for (const i of [coord, worker, stranger]) expect((await i.spl(["init"])).code).toBe(0);
    serveHttps(coord, "fleet-ca");
    serveHttps(worker, "fleet-ca");
    const url = `https://127.0.0.1:${coord.port}`;
    const made = await coord.spl(["fleet", "coordinate", "--advertise", url, "--heartbeat", "1"], { timeoutMs: 60_000 });
    expect(made.code).toBe(0);
    expect(made.stdout).toContain("  ! no [fleet] ca_file: this coordinator trusts only the system roots when it calls members — give --ca-file <ca.pem> for a private CA");
    const token = /^ {2}(spl_join_\S+)$/m.exec(made.stdout)![1]!;
    writeFileSync(join(pki, "join_token"), token);

    const refused = await stranger.spl(["fleet", "join", url, "--name", "stranger", "--token-file", join(pki, "join_token"), "--ca-file", join(pki, "other-ca.pem")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^error: cannot join the fleet of ${url}: ${url} presented a certificate this member does not trust \\(\\S+\\) — set \\[fleet\\] ca_file to the CA that signed it`));

    const joined = await worker.spl(["fleet", "join", url, "--name", "tls-worker", "--token-file", join(pki, "join_token"), "--ca-file", join(pki, "fleet-ca.pem"), "--advertise", `https://127.0.0.1:${worker.port}`]);
    expect(joined.code).toBe(0);
    await worker.start();
    const list = await waitFor(async () => {
      const r = await worker.spl(["fleet", "list", "-o", "json"]);
      const m = r.code === 0 ? JSON.parse(r.stdout) : [];
      return m.filter((x: any) => x.status === "live" && x.health === "healthy").length === 2 ? m : null;
    }, 20_000, 200);
    expect(list.map((m: any) => m.endpoint).sort()).toEqual([url, `https://127.0.0.1:${worker.port}`].sort());
    const plain = await fetch(`http://127.0.0.1:${coord.port}/health`).then((r) => r.status, (e) => (e as Error).name);
    expect(plain).not.toBe(200);
    const doctor = await worker.spl(["doctor"]);
    expect(doctor.stdout).toContain(`✓ fleet coordinator       ${url} answers /health`);
    expect(doctor.stdout).not.toContain("fleet transport");
  }, 120_000);
});
