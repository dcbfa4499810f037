/**
 * `thinlayer verify --stack` end to end on a real registry: the base built by buildah and the app
 * built daemonless by ensure (both attested), the stack's outputs from --outputs-file, the
 * checkout's inputs from the stack config; a one-byte requirements edit fails both images.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureImage } from "../../lib/build/ensure";
import { appTag, baseTag, computeAppInputs, computeBaseInputs } from "../../lib/plan";
import { findAttestations } from "../../lib/provenance/attach";
import { RegistryClient } from "../../lib/oci/client";
import { buildahStorage, makeProject, tempDir } from "../helpers/images";
import { startRegistry } from "../helpers/registry";
import { needTools } from "../helpers/tools";

const REPO = path.resolve(__dirname, "../..");
const PLATFORM = "linux/amd64";
const quiet = () => undefined;

void test("verify --stack: both images match a clean checkout (commit recorded); a one-byte requirements edit names the file", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "git")) return;
    const reg = await startRegistry();
    t.after(() => reg.stop());
    const storage = buildahStorage();
    t.after(() => storage.remove());
    const dir = tempDir("thinlayer-proj-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), `config:\n  thinlayer:registry: "${reg.host}"\n  thinlayer:appDir: app\n`);
    const p = makeProject(path.join(dir, "app"));
    const git = (...args: string[]) =>
        assert.equal(spawnSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args]).status, 0, `git ${args.join(" ")}`);
    git("init", "-q");
    git("add", ".");
    git("commit", "-q", "-m", "fixture");
    const commit = spawnSync("git", ["-C", dir, "rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim();

    const bi = await computeBaseInputs({ contextDir: p.contextDir, dockerfile: p.baseDockerfile, buildArgs: {}, platform: PLATFORM });
    const base = await ensureImage(
        {
            image: "base",
            context: p.contextDir,
            dockerfile: p.baseDockerfile,
            repository: `${reg.host}/thinlayer/base`,
            platform: PLATFORM,
            expectTag: baseTag(bi.hash),
            builder: "buildah",
        },
        { log: quiet, builderEnv: storage.env },
    );
    const ai = await computeAppInputs({ contextDir: p.contextDir, dockerfile: p.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: bi.hash });
    const app = await ensureImage(
        {
            image: "app",
            context: p.contextDir,
            dockerfile: p.appDockerfile,
            repository: `${reg.host}/thinlayer/app`,
            platform: PLATFORM,
            expectTag: appTag(ai.hash),
            baseRef: base.ref,
            baseHash: bi.hash,
        },
        { log: quiet },
    );
    assert.deepEqual(
        [base.how, base.attestation?.action, app.how, app.attestation?.action],
        ["buildah", "attached", "daemonless", "attached"],
        String([base.warnings, app.warnings]),
    );
    const st = (await findAttestations(new RegistryClient(reg.host), "thinlayer/app", app.digest))[0].statement;
    assert.deepEqual(st?.predicate.source, { commit });

    const outputs = path.join(dir, "outputs.json");
    fs.writeFileSync(outputs, JSON.stringify({ baseImageRef: base.ref, appImageRef: app.ref, releaseId: "rel-x" }));
    const verify = () =>
        spawnSync(process.execPath, [path.join(REPO, "bin/thinlayer.js"), "verify", "--project", dir, "--stack", "t", "--outputs-file", outputs], {
            encoding: "utf8",
        });
    const ok = verify();
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`^base: verified .*built from commit ${commit.slice(0, 12)}\\)\\napp: verified `));

    fs.writeFileSync(path.join(p.contextDir, "requirements.txt"), "django==5.1\n");
    const bad = verify();
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /base: DIFFERS [^\n]*\n {2}changed {2}requirements\.txt \(content\)\n {2}field {4}hash: /);
    assert.match(bad.stdout, /app: DIFFERS [^\n]*\n {2}field {4}base\.hash: /, "the app is built on another base now");
});
