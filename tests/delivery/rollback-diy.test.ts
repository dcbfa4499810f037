/**
 * Rollback history on a local DIY backend (`file://`), where `pulumi stack export --version N` is
 * refused: the same releases come out of the backend's own history files as out of the recorded
 * `stack history` + `stack export` fixtures. The layout is the one Pulumi 3.248 writes (checked
 * under the real engine by tests/e2e/deploy.test.ts, whose rollback scenario runs on such a backend).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { deployedReleases, fileSource, pulumiSource } from "../../cli/rollback";
import { parseHistory } from "../../lib/release/rollback";
import { diyHistoryDir, localBackendDir } from "../../lib/release/diy-history";

const fixtures = path.join(__dirname, "..", "fixtures", "history", "uat");

/** Writes the fixture's updates as a DIY backend writes them: <stack>-<nanos>.history.json + .checkpoint.json. */
function diyBackend(): { dir: string; project: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-diy-"));
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-diy-project-"));
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: thinlayer\nruntime: nodejs\n");
    const hist = path.join(dir, ".pulumi", "history", "thinlayer", "uat");
    fs.mkdirSync(hist, { recursive: true });
    const history = JSON.parse(fs.readFileSync(path.join(fixtures, "history.json"), "utf8")) as {
        version: number;
        startTime: string;
        kind: string;
        result: string;
        message?: string;
        config?: unknown;
        environment?: unknown;
    }[];
    for (const e of history) {
        const secs = Math.floor(Date.parse(e.startTime) / 1000);
        // Nanosecond stems of different lengths: ordering must be numeric, not lexical.
        const stem = `uat-${e.version === 1 ? "999" : `${BigInt(secs) * 1_000_000_000n}`}`;
        fs.writeFileSync(
            path.join(hist, `${stem}.history.json`),
            JSON.stringify({
                kind: e.kind,
                startTime: secs,
                endTime: secs + 60,
                result: e.result,
                message: e.message,
                config: e.config ?? {},
                environment: e.environment ?? {},
                version: 0,
            }),
        );
        const exp = path.join(fixtures, "exports", `${e.version}.json`);
        const deployment = fs.existsSync(exp) ? (JSON.parse(fs.readFileSync(exp, "utf8")) as { deployment: unknown }).deployment : { resources: [] };
        fs.writeFileSync(
            path.join(hist, `${stem}.checkpoint.json`),
            JSON.stringify({ version: 3, checkpoint: { stack: "organization/thinlayer/uat", latest: deployment } }),
        );
    }
    return { dir, project };
}

test("localBackendDir: file:// URLs only", () => {
    assert.equal(localBackendDir("file:///srv/state"), "/srv/state");
    assert.equal(localBackendDir("file://~/state"), path.join(process.env.HOME ?? "", "state"));
    assert.equal(localBackendDir("s3://bucket"), undefined);
    assert.equal(localBackendDir("https://api.pulumi.com"), undefined);
    assert.equal(localBackendDir(undefined), undefined);
});

test("a file:// backend: the releases from its history files equal those from stack history + stack export", async () => {
    const { dir, project } = diyBackend();
    const saved = process.env.PULUMI_BACKEND_URL;
    try {
        process.env.PULUMI_BACKEND_URL = `file://${dir}`;
        assert.ok(diyHistoryDir(dir, "thinlayer", "uat"));
        const diy = pulumiSource({ stack: "uat", projectDir: project, pageSize: 20 });
        const recorded = fileSource({ stack: "uat", historyFile: path.join(fixtures, "history.json"), exportsDir: path.join(fixtures, "exports") });
        const fromDiy = await deployedReleases(parseHistory(await diy.history()), diy);
        const fromCli = await deployedReleases(parseHistory(await recorded.history()), recorded);
        // startTime as an instant: the CLI prints "…:00.000Z" (as the DIY source does), the fixture "…:00Z".
        const key = (rs: typeof fromDiy) => rs.map((r) => JSON.stringify({ ...r, version: undefined, startTime: Date.parse(r.startTime) }));
        assert.ok(fromDiy.length >= 2, `releases found: ${fromDiy.length}`);
        assert.deepEqual(key(fromDiy), key(fromCli));
        // Versions are 1..N oldest first, and the failed update is kept as failed.
        const h = parseHistory(await diy.history());
        assert.deepEqual(
            h.map((x) => x.version),
            [6, 5, 4, 3, 2, 1],
        );
        assert.equal(h.find((x) => x.version === 5)?.result, "failed");
    } finally {
        if (saved === undefined) delete process.env.PULUMI_BACKEND_URL;
        else process.env.PULUMI_BACKEND_URL = saved;
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(project, { recursive: true, force: true });
    }
});
