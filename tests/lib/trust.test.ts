// CA certificates handed over past Node's start-up (lib/oci/trust.ts): a real HTTPS server whose
// certificate only a test CA vouches for, and the registry client's HTTP in a fresh process (its
// HTTPS pool is made once per process), with the CA given each way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { needTools, openssl } from "../helpers/tools";
import { tempDir } from "../helpers/images";
import { EXTRA_CA_ENV, takeHandedOverCaCerts } from "../../lib/oci/trust";

const REPO = path.resolve(__dirname, "../..");

/** A test CA (ca.pem) and a serving certificate for 127.0.0.1 signed by it (srv.pem, srv.key). */
function makeCerts(dir: string): void {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=thinlayer-trust-test-ca"]);
    openssl(dir, ["req", ...ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]);
    fs.writeFileSync(path.join(dir, "srv.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    openssl(dir, [
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "srv.ext",
    ]);
}

type Outcome = { statuses?: number[]; error?: string; nodeExtra: string | null };

/** Two parallel GETs through lib/oci/http.ts in a new process with `env`, after the CLI's takeHandedOverCaCerts(). (Asynchronously: the server is in this process.) */
async function requestIn(dir: string, url: string, env: NodeJS.ProcessEnv): Promise<{ result: Outcome; stderr: string }> {
    const script = path.join(dir, "client.ts");
    fs.writeFileSync(
        script,
        `import { takeHandedOverCaCerts } from ${JSON.stringify(path.join(REPO, "lib/oci/trust"))};
import { httpRequest } from ${JSON.stringify(path.join(REPO, "lib/oci/http"))};
takeHandedOverCaCerts();
const get = () => httpRequest(${JSON.stringify(url)}, { method: "GET", timeoutMs: 10_000 });
const nodeExtra = process.env.NODE_EXTRA_CA_CERTS ?? null;
Promise.all([get(), get()]).then(
    (rs) => console.log(JSON.stringify({ statuses: rs.map((r) => r.status), nodeExtra })),
    (e) => console.log(JSON.stringify({ error: e.code ?? e.message, nodeExtra })),
);
`,
    );
    const base = { ...process.env };
    delete base.NODE_EXTRA_CA_CERTS;
    delete base[EXTRA_CA_ENV];
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
        execFile(
            process.execPath,
            ["--import", "tsx", script],
            { cwd: REPO, encoding: "utf8", env: { ...base, ...env }, timeout: 60_000 },
            (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve({ stdout, stderr })),
        ),
    );
    return { result: JSON.parse(r.stdout) as Outcome, stderr: r.stderr };
}

void test("HTTPS trusts a CA handed over as THINLAYER_EXTRA_CA_CERTS, as Node trusts NODE_EXTRA_CA_CERTS", { timeout: 120_000 }, async (t) => {
    if (!needTools(t, "openssl")) return;
    const dir = tempDir("thinlayer-trust-");
    makeCerts(dir);
    const server = https.createServer({ key: fs.readFileSync(path.join(dir, "srv.key")), cert: fs.readFileSync(path.join(dir, "srv.pem")) }, (_req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;
    const ca = path.join(dir, "ca.pem");
    try {
        // Handed over (as the program runs the CLI): trusted, and NODE_EXTRA_CA_CERTS is back for children.
        const handed = await requestIn(dir, url, { [EXTRA_CA_ENV]: ca, NODE_EXTRA_CA_CERTS: "" });
        assert.deepEqual(handed.result, { statuses: [200, 200], nodeExtra: ca });
        // Node's own way still works (the client adds nothing then).
        assert.deepEqual((await requestIn(dir, url, { NODE_EXTRA_CA_CERTS: ca })).result, { statuses: [200, 200], nodeExtra: ca });
        // Neither: the certificate is not trusted (so the two above are the CA's doing).
        const none = (await requestIn(dir, url, {})).result;
        assert.equal(none.statuses, undefined);
        assert.match(none.error ?? "", /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/);
        // A file that cannot be read: a warning naming it, as Node gives for NODE_EXTRA_CA_CERTS, then Node's roots only.
        const missing = path.join(dir, "no-such.pem");
        const bad = await requestIn(dir, url, { [EXTRA_CA_ENV]: missing, NODE_EXTRA_CA_CERTS: "" });
        assert.match(bad.result.error ?? "", /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/);
        assert.ok(
            bad.stderr.includes(`Ignoring extra certs from \`${missing}\` (${EXTRA_CA_ENV}, handed over from NODE_EXTRA_CA_CERTS), load failed: ENOENT`),
            bad.stderr,
        );
    } finally {
        await new Promise((r) => server.close(r));
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

void test("takeHandedOverCaCerts: NODE_EXTRA_CA_CERTS back as the user had it; nothing handed over, nothing changed", () => {
    const handed: NodeJS.ProcessEnv = { [EXTRA_CA_ENV]: "/etc/ssl/x y.pem", NODE_EXTRA_CA_CERTS: "" };
    assert.equal(takeHandedOverCaCerts(handed), "/etc/ssl/x y.pem");
    assert.equal(handed.NODE_EXTRA_CA_CERTS, "/etc/ssl/x y.pem");
    // The user had none: the program's blank is removed, not left as an empty value.
    const unset: NodeJS.ProcessEnv = { [EXTRA_CA_ENV]: "", NODE_EXTRA_CA_CERTS: "" };
    assert.equal(takeHandedOverCaCerts(unset), undefined);
    assert.equal("NODE_EXTRA_CA_CERTS" in unset, false);
    const direct: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: "/ca.pem" };
    assert.equal(takeHandedOverCaCerts(direct), undefined);
    assert.deepEqual(direct, { NODE_EXTRA_CA_CERTS: "/ca.pem" });
});
