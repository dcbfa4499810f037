// What loading `ensure` costs every run: TLS (node:tls, node:https), worker threads and the AWS
// SDK load only when used (an HTTPS registry, a parallel read of many files, an ECR token), so a
// run against a loopback registry never pays for them. Checked on the real entry point.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../helpers/images";
import { REPO } from "../helpers/cli";

test("`thinlayer ensure` loads no TLS, worker threads or AWS SDK until it needs them", (t) => {
    // The compiled CLI, as users run it (tsx itself loads worker threads): `npm ci` builds it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { compiledIsFresh } = require("../../bin/fresh.js") as { compiledIsFresh(root: string): boolean };
    if (!compiledIsFresh(REPO)) {
        if (process.env.CI === "true") assert.fail("build/ is missing or stale under CI: npm ci (prepare) builds it");
        t.skip("build/ is stale (a source edited since): run npm run build");
        return;
    }
    const dir = tempDir("thinlayer-lazy-modules-");
    const probe = path.join(dir, "probe.js");
    // At exit: the built-in modules loaded, and any AWS SDK file required.
    fs.writeFileSync(
        probe,
        `process.on("exit", () => process.stderr.write("LOADED " + JSON.stringify({ builtins: process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13)), aws: Object.keys(require.cache).filter((f) => f.includes("@aws-sdk")).length }) + "\\n"));\n`,
    );
    const r = spawnSync(process.execPath, ["--require", probe, path.join(REPO, "bin/thinlayer.js"), "ensure", "--help"], {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, THINLAYER_CACHE_DIR: dir },
    });
    assert.equal(r.status, 0, r.stderr);
    const line = r.stderr.split("\n").find((l) => l.startsWith("LOADED ")) as string;
    const loaded = JSON.parse(line.slice(7)) as { builtins: string[]; aws: number };
    assert.ok(loaded.builtins.includes("http"), `the probe sees the CLI's modules: ${loaded.builtins.join(", ")}`);
    for (const m of ["tls", "_tls_wrap", "https", "worker_threads"]) assert.ok(!loaded.builtins.includes(m), `${m} loaded at start-up`);
    assert.equal(loaded.aws, 0);
    fs.rmSync(dir, { recursive: true, force: true });
});
