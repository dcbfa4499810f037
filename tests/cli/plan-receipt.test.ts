/**
 * `thinlayer plan --markdown`, the cost receipt, on the example app in a git repository whose main
 * branch is "deployed" (its base and app tags pushed to a real registry), for the three changes a
 * pull request makes: an app edit, a requirements edit, and a new contract migration (the
 * makemigrations RemoveField fixture). The app edit is then built daemonless by `thinlayer ensure
 * app`, and the layer it uploads has exactly the size the receipt announced.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { needTools } from "../helpers/tools";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { pushScratchImage } from "../helpers/images";
import { RegistryClient } from "../../lib/oci/client";
import type { ImageManifest } from "../../lib/oci/mediatypes";
import { cliRunner } from "../helpers/cli";
import { copyDir, isolateCache, tempDir } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");
const FIXTURE = path.join(REPO, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py");

const thinlayer = cliRunner(cacheDir, 120_000);

function stackFile(registry: string, logLevel = "INFO"): string {
    return `config:\n  thinlayer:appDir: app\n  thinlayer:registry: "${registry}"\n  thinlayer:settings:\n    - DJANGO_DEBUG=false\n    - DJANGO_LOG_LEVEL=${logLevel}\n`;
}

/** The example app committed on main, then a branch `change` checked out for the scenario's edits. */
function project(registry: string): { dir: string; app: string } {
    const dir = tempDir("thinlayer-receipt-");
    const app = path.join(dir, "app");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), stackFile(registry));
    copyDir(path.join(REPO, "examples/django-app"), app);
    const git = (...args: string[]) =>
        execFileSync("git", args, {
            cwd: dir,
            env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
        });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("commit", "-q", "-m", "app");
    git("checkout", "-q", "-b", "change");
    return { dir, app };
}

interface PlanOut {
    base: { tag: string; repository: string; hash: string };
    app: { tag: string; repository: string };
}

/** Pushes main's base and app tags, as a deploy of main would have left them. */
async function deployMain(reg: StartedRegistry): Promise<{ baseDigest: string }> {
    const { dir } = project(reg.host);
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--json");
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout) as PlanOut;
    const client = new RegistryClient(reg.host);
    const base = await pushScratchImage(client, p.base.repository, p.base.tag, [], { env: ["PATH=/usr/local/bin:/usr/bin:/bin"] });
    await pushScratchImage(client, p.app.repository, p.app.tag, []);
    return { baseDigest: base.digest };
}

/** The cells of the images table row of `image` (unescaped pipes separate cells). */
function imageRow(md: string, image: "base" | "app"): { tag: string; decision: string; inputs: string; upload: string } {
    const line = md.split("\n").find((l) => l.startsWith(`| ${image} | `));
    assert.ok(line, `no ${image} row in:\n${md}`);
    const cells = line.slice(2, -2).split(/(?<!\\) \| /);
    assert.equal(cells.length, 5, line);
    return { tag: cells[1], decision: cells[2], inputs: cells[3], upload: cells[4] };
}

/** The exact byte count a cell states as `(N B)` or `N B`. */
function bytesIn(cellText: string): number {
    const m = /(?:\(|^|\*\*)(\d+) B\b/.exec(cellText) ?? /(\d+) B\)/.exec(cellText);
    assert.ok(m, `no byte count in ${JSON.stringify(cellText)}`);
    return Number(m[1]);
}

function receipt(dir: string, ...extra: string[]): string {
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--markdown", "--registry-check", "--against", "main", ...extra);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^### Cost receipt: stack `t`\n/);
    return r.stdout;
}

void test("receipt for the three scenarios of the example: app edit, requirements edit, contract migration", async (t) => {
    if (!needTools(t, "docker-registry", "git")) return;
    const reg = await startRegistry();
    t.after(() => reg.stop());
    const { baseDigest } = await deployMain(reg);

    await t.test("unchanged: both images reused, nothing uploaded, no migration, no setting", () => {
        const { dir } = project(reg.host);
        const md = receipt(dir);
        for (const image of ["base", "app"] as const) {
            const row = imageRow(md, image);
            assert.match(row.decision, /^\*\*reuse\*\*/);
            assert.equal(bytesIn(row.upload), 0);
        }
        assert.match(md, /\*\*Migrations to apply\*\* \(compared with git main\): 0 of 1\n\nnone\n/);
        assert.match(md, /\*\*Settings keys that change\*\* \(compared with git main\): none\n/);
    });

    await t.test('--registry names the registry of a stack whose thinlayer:registry is "" (ECR, unknown offline)', () => {
        const { dir } = project(reg.host);
        fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), stackFile(""));
        assert.match(imageRow(receipt(dir), "base").decision, /^unknown \(registry is the stack's ECR registry, not known offline/);
        assert.match(imageRow(receipt(dir, "--registry", reg.host), "base").decision, /^\*\*reuse\*\*/);
        const bad = thinlayer("plan", "--stack", "t", "--project", dir, "--markdown", "--registry", "https://x/");
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /registry: got "https:\/\/x\/"; expected host\[:port\] without scheme or path/);
    });

    await t.test("app edit (and a setting): base reused, app built daemonless, its measured layer is the size ensure uploads", async () => {
        const { dir, app } = project(reg.host);
        fs.appendFileSync(path.join(app, "records/views.py"), "\n# receipt scenario: an app edit\n");
        fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), stackFile(reg.host, "DEBUG"));
        const md = receipt(dir);
        const base = imageRow(md, "base");
        const appRow = imageRow(md, "app");
        assert.match(base.decision, /^\*\*reuse\*\*/);
        assert.equal(bytesIn(base.upload), 0);
        assert.match(appRow.decision, /^\*\*build daemonless\*\* \(tag not in the registry\)$/);
        assert.match(appRow.inputs, /^\d+ files, /);
        assert.ok(bytesIn(appRow.inputs) > 0);
        const layerBytes = bytesIn(appRow.upload);
        assert.ok(layerBytes > 0, appRow.upload);
        assert.match(md, /\*\*Settings keys that change\*\* \(compared with git main\): changed `DJANGO_LOG_LEVEL`\n/);
        assert.ok(!md.includes("DEBUG`"), "values never reach the receipt");

        // The estimate is the real thing: the daemonless build uploads a layer of exactly that size.
        const plan = JSON.parse(thinlayer("plan", "--stack", "t", "--project", dir, "--json").stdout) as PlanOut;
        const e = thinlayer(
            "ensure",
            "app",
            "--context",
            app,
            "--dockerfile",
            path.join(app, "Dockerfile"),
            "--repository",
            `${reg.host}/${plan.app.repository}`,
            "--base-ref",
            `${reg.host}/${plan.base.repository}@${baseDigest}`,
            "--base-hash",
            plan.base.hash,
            "--expect-tag",
            plan.app.tag,
            "--json",
        );
        assert.equal(e.code, 0, e.stderr);
        const m = await new RegistryClient(reg.host).getManifest(plan.app.repository, plan.app.tag);
        const manifest = JSON.parse(m.bytes.toString("utf8")) as ImageManifest;
        assert.equal(manifest.layers[manifest.layers.length - 1].size, layerBytes);
    });

    await t.test("requirements edit: base built with a builder (upload unknown), app rebuilt daemonless on it", () => {
        const { dir, app } = project(reg.host);
        fs.appendFileSync(path.join(app, "requirements/base.txt"), "six==1.17.0\n");
        const md = receipt(dir);
        const base = imageRow(md, "base");
        assert.match(base.decision, /^\*\*build with a builder \(auto\)\*\* \(tag not in the registry\)$/);
        assert.match(base.upload, /^unknown: a builder build/);
        assert.match(base.inputs, /^2 files, /);
        const appRow = imageRow(md, "app");
        assert.match(appRow.decision, /^\*\*build daemonless\*\*/);
        assert.ok(bytesIn(appRow.upload) > 0);
        assert.match(md, /\*\*Settings keys that change\*\* \(compared with git main\): none\n/);
    });

    await t.test("new RemoveField migration: listed as contract with its operation, BLOCKED, and warned", () => {
        const { dir, app } = project(reg.host);
        fs.copyFileSync(FIXTURE, path.join(app, "records/migrations/0002_remove_encounter_notes.py"));
        const md = receipt(dir);
        assert.match(imageRow(md, "base").decision, /^\*\*reuse\*\*/);
        assert.match(imageRow(md, "app").decision, /^\*\*build daemonless\*\*/);
        assert.match(md, /\*\*Migrations to apply\*\* \(compared with git main\): 1 of 2\n/);
        assert.match(md, /\n\| `records\.0002_remove_encounter_notes` \| contract \| \*\*BLOCKED\*\* \| RemoveField encounter\.notes \(line 13\) \|\n/);
        assert.match(
            md,
            /\n- migration gate: `pulumi preview --stack t` fails until records\.0002_remove_encounter_notes is split into expand\/contract steps or acknowledged/,
        );

        fs.writeFileSync(
            path.join(dir, "Pulumi.t.yaml"),
            stackFile(reg.host) + "  thinlayer:acknowledgedMigrations:\n    - records.0002_remove_encounter_notes\n",
        );
        const acked = receipt(dir);
        assert.match(acked, /\| `records\.0002_remove_encounter_notes` \| contract \| acknowledged \| RemoveField encounter\.notes \(line 13\) \|/);
        assert.ok(!acked.includes("migration gate:"), "an acknowledged migration is not a warning");
    });
});

void test("without --registry-check: the decision is unknown (no registry check), the app layer is still measured", () => {
    const dir = tempDir("thinlayer-receipt-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.a.yaml"), "config:\n  thinlayer:appDir: app\n");
    fs.writeFileSync(path.join(dir, "Pulumi.b.yaml"), "config:\n  thinlayer:appDir: app\n  thinlayer:settings:\n    - X=1\n");
    copyDir(path.join(REPO, "examples/django-app"), path.join(dir, "app"));
    const r = thinlayer("plan", "--stack", "a", "--stack", "b", "--project", dir, "--markdown");
    assert.equal(r.code, 0, r.stderr);
    const sections = r.stdout.split(/(?=^### )/m);
    assert.deepEqual(
        sections.map((s) => /^### Cost receipt: stack `(\w+)`/.exec(s)?.[1]),
        ["a", "b"],
    );
    for (const s of sections) {
        assert.match(imageRow(s, "base").decision, /^unknown \(no registry check\); if the tag is missing: build with a builder \(auto\)$/);
        assert.match(imageRow(s, "app").decision, /^unknown \(no registry check\); if the tag is missing: build daemonless$/);
        assert.match(imageRow(s, "app").upload, / if built: the app layer as gzip, measured/);
        assert.ok(bytesIn(imageRow(s, "app").upload) > 0);
        assert.match(s, /\*\*Settings keys that change\*\*: unknown, no baseline \(pass --against <git ref> or --deployed\)/);
        assert.match(s, /\*\*Migrations to apply\*\* \(no baseline: every migration listed\): 1 of 1\n\n\| migration/);
    }
});

void test("--markdown with --json, and several stacks without --markdown, are input errors", () => {
    const both = thinlayer("plan", "--stack", "uat", "--markdown", "--json");
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--markdown and --json: got \(both given\); expected one output format\. Fix: /);
    const two = thinlayer("plan", "--stack", "uat", "--stack", "prod");
    assert.equal(two.code, 1);
    assert.match(two.stderr, /--stack: got uat, prod; expected one stack \(several only with --markdown\)\. Fix: /);
});
