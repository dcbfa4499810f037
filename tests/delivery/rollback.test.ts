/**
 * Rollback via prior config, on recorded `pulumi stack history --json` and `pulumi stack export`
 * fixtures: which release is chosen, and the stack file written (real temp files, through the real
 * CLI entry point as a subprocess).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as YAML from "yaml";
import { loadStackConfig } from "../../lib/config";
import { deployedReleases, fileSource, HistorySource } from "../../cli/rollback";
import { chooseRelease, parseHistory, releaseSignature, settingsChanges, successfulUpdates, writePin } from "../../lib/release/rollback";

const root = path.resolve(__dirname, "../..");
const fixtures = path.join(root, "tests/fixtures/history");
const ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app";
// The releases of the fixtures (see tests/fixtures/history/README.md).
const REL = {
    a: { id: "rel-57c2ef560654", ref: `${ECR}@sha256:41fd17569e642ebc00f881bcb3917c30f02f530753cb2744fa53ede0ef78b60b` },
    b: { id: "rel-8104fc88ad3f", ref: `${ECR}@sha256:c81731cd937c70d8786614e25b805d114a68f8e4872530a24de17532f53f9f4e` },
    c: { id: "rel-6b33f2ca2b46", ref: `${ECR}@sha256:628f58b1128b510154aea8c0e219bf9332bb01cf45c021427574ce18684adf54` },
};

/** A file source that counts the exports it reads. */
function countingSource(scenario: string): HistorySource & { reads: number[] } {
    const base = fileSource({ stack: "uat", historyFile: path.join(fixtures, scenario, "history.json"), exportsDir: path.join(fixtures, scenario, "exports") });
    const reads: number[] = [];
    return {
        reads,
        history: base.history,
        exportOf: (v) => {
            reads.push(v);
            return base.exportOf(v);
        },
    };
}

async function load(scenario: string) {
    const src = countingSource(scenario);
    const history = parseHistory(await src.history());
    const deployed = await deployedReleases(history, src);
    return { history, deployed, reads: src.reads };
}

/** A temp copy of the project's Pulumi files (schema + stack files) and the example app dir name. */
function tempProject(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-rollback-"));
    for (const f of ["Pulumi.yaml", "Pulumi.uat.yaml", "Pulumi.prod.yaml"]) fs.copyFileSync(path.join(root, f), path.join(dir, f));
    // A comment and a key the rollback must keep.
    const uat = fs
        .readFileSync(path.join(dir, "Pulumi.uat.yaml"), "utf8")
        .replace("config:\n", "# uat: owned by the EMR team\nconfig:\n  # one replica is enough for testers\n");
    fs.writeFileSync(path.join(dir, "Pulumi.uat.yaml"), uat);
    fs.symlinkSync(path.join(root, "examples"), path.join(dir, "examples"));
    return dir;
}

/** The CLI as users run it: the real entry point (bin/thinlayer.js), as a subprocess. */
function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
    return spawnSync(process.execPath, [path.join(root, "bin/thinlayer.js"), "rollback", ...args], { encoding: "utf8", env, cwd: root });
}

test("the history parser reads the recorded shape, newest first, and finds the successful updates", async () => {
    const { history } = await load("uat");
    assert.deepEqual(
        history.map((h) => h.version),
        [6, 5, 4, 3, 2, 1],
    );
    assert.deepEqual(
        successfulUpdates(history).map((h) => h.version),
        [6, 4, 2, 1],
    );
    assert.equal(history[0].config["thinlayer:settings"].secret, false);
    assert.equal(history[0].config["thinlayer:secretSettings"].value, undefined, "secrets carry no value");
    // Same commit and config: one release, one export read.
    assert.equal(releaseSignature(history.find((h) => h.version === 1)!), releaseSignature(history.find((h) => h.version === 2)!));
    assert.notEqual(releaseSignature(history.find((h) => h.version === 2)!), releaseSignature(history.find((h) => h.version === 4)!));
});

test("outputs are exported once per distinct release, and releases carry image, settings and id", async () => {
    const { deployed, reads } = await load("uat");
    assert.deepEqual(reads, [6, 4, 2], "update 1 shares update 2's release; the failed update 5 and the refresh are never exported");
    assert.deepEqual(
        deployed.map((d) => [d.version, d.releaseId, d.appImageRef]),
        [
            [6, REL.c.id, REL.c.ref],
            [4, REL.b.id, REL.b.ref],
            [2, REL.a.id, REL.a.ref],
            [1, REL.a.id, REL.a.ref],
        ],
    );
    assert.equal(deployed[0].settings.DJANGO_LOG_LEVEL, "DEBUG");
    assert.equal(deployed[1].settings.DJANGO_LOG_LEVEL, "INFO");
});

test("--steps counts distinct releases of successful updates back from the current one", async () => {
    const { history, deployed } = await load("uat");
    const one = chooseRelease(deployed, history, { steps: 1 }, "uat");
    assert.equal(one.current.releaseId, REL.c.id);
    assert.equal(one.target.releaseId, REL.b.id);
    assert.equal(one.target.version, 4);
    const two = chooseRelease(deployed, history, { steps: 2 }, "uat");
    assert.equal(two.target.releaseId, REL.a.id);
    assert.equal(two.target.version, 2, "the newest update of that release");
    assert.throws(() => chooseRelease(deployed, history, { steps: 3 }, "uat"), {
        message:
            "--steps: got 3; expected an integer from 1 to 2 (releases deployed before the current one in the history read). Fix: pick a smaller N, or --to <release id|digest>",
    });
});

test("after a rollback, --steps 1 goes further back (not to the bad release), and newer failures are noted", async () => {
    const { history, deployed, reads } = await load("uat-after-rollback");
    assert.deepEqual(reads, [7, 6, 4, 2]);
    const c = chooseRelease(deployed, history, { steps: 1 }, "uat");
    assert.equal(c.current.appImageRef, REL.b.ref);
    assert.equal(c.current.pinned, true);
    assert.equal(c.current.releaseId, REL.b.id, "the pinned update reports no id; it is carried over from update 4");
    assert.equal(c.target.releaseId, REL.a.id);
    assert.deepEqual(
        c.newerFailures.map((f) => f.version),
        [8],
    );
    // Rolling forward again is explicit.
    assert.equal(chooseRelease(deployed, history, { to: REL.c.id }, "uat").target.version, 6);
});

test("--to accepts a release id, a digest or a digest ref; anything else names the flag and the choices", async () => {
    const { history, deployed } = await load("uat");
    assert.equal(chooseRelease(deployed, history, { to: REL.a.id }, "uat").target.appImageRef, REL.a.ref);
    assert.equal(chooseRelease(deployed, history, { to: REL.b.ref.split("@")[1] }, "uat").target.releaseId, REL.b.id);
    assert.equal(chooseRelease(deployed, history, { to: REL.b.ref }, "uat").target.releaseId, REL.b.id);
    assert.throws(() => chooseRelease(deployed, history, { to: "app-0123456789ab" }, "uat"), {
        message:
            '--to: got "app-0123456789ab"; expected a release id (rel-<hex>), a digest (sha256:<64 hex>) or repo@sha256:<64 hex>. Fix: copy one from `thinlayer rollback --stack <s> --list`',
    });
    assert.throws(
        () => chooseRelease(deployed, history, { to: "rel-000000000000" }, "uat"),
        /--to: got "rel-000000000000"; expected a release in the history read \(rel-57c2ef560654, rel-8104fc88ad3f, rel-6b33f2ca2b46\)/,
    );
});

test("writePin sets the image and the release's settings and keeps comments and every other key; clear removes only the pin", () => {
    const before =
        "# top comment\nconfig:\n  aws:region: eu-west-1 # region\n  thinlayer:webReplicas: 1\n  thinlayer:settings:\n    - DJANGO_LOG_LEVEL=DEBUG\n    - OLD=1\n";
    const pinned = writePin(before, { releaseImage: REL.b.ref, settings: { DJANGO_LOG_LEVEL: "INFO", NEW: "x=y" } });
    assert.match(pinned, /^# top comment\n/);
    assert.match(pinned, /aws:region: eu-west-1 # region\n/);
    const doc = YAML.parse(pinned) as { config: Record<string, unknown> };
    assert.deepEqual(doc.config, {
        "aws:region": "eu-west-1",
        "thinlayer:webReplicas": 1,
        "thinlayer:settings": ["DJANGO_LOG_LEVEL=INFO", "NEW=x=y"],
        "thinlayer:releaseImage": REL.b.ref,
    });
    const cleared = writePin(pinned, null);
    const after = YAML.parse(cleared) as { config: Record<string, unknown> };
    assert.equal(after.config["thinlayer:releaseImage"], undefined);
    assert.deepEqual(after.config["thinlayer:settings"], ["DJANGO_LOG_LEVEL=INFO", "NEW=x=y"], "clearing keeps the settings");
    assert.match(cleared, /# region/);
    assert.throws(
        () => writePin(before, { releaseImage: "thinlayer/app:latest", settings: {} }),
        /thinlayer:releaseImage: got "thinlayer\/app:latest"; expected repo@sha256:<64 hex>/,
    );
    assert.deepEqual(settingsChanges({ A: "1", B: "2" }, { A: "1", B: "3", C: "4" }), ["~ B: 2 -> 3", "+ C=4"]);
});

test("writePin records the release's migrations hash; a pin without one, or clearing, removes it", () => {
    const m = "ab".repeat(32);
    const withHash = writePin("config: {}\n", { releaseImage: REL.b.ref, settings: {}, migrationsHash: m });
    assert.equal((YAML.parse(withHash) as { config: Record<string, unknown> }).config["thinlayer:releaseMigrationsHash"], m);
    const repinned = writePin(withHash, { releaseImage: REL.b.ref, settings: {} });
    assert.equal(
        (YAML.parse(repinned) as { config: Record<string, unknown> }).config["thinlayer:releaseMigrationsHash"],
        undefined,
        "a stale hash never outlives its pin",
    );
    const cleared = writePin(withHash, null);
    assert.deepEqual(
        (YAML.parse(cleared) as { config: Record<string, unknown> }).config,
        { "thinlayer:settings": [] },
        "clearing removes the pin and its hash, keeps the settings",
    );
});

test("thinlayer rollback --steps 1 (CLI): prints the chosen release and the next command, writes a stack file the config parser accepts", () => {
    const dir = tempProject();
    const file = path.join(dir, "Pulumi.uat.yaml");
    const r = cli([
        "--project",
        dir,
        "--stack",
        "uat",
        "--steps",
        "1",
        "--history-file",
        path.join(fixtures, "uat/history.json"),
        "--exports-dir",
        path.join(fixtures, "uat/exports"),
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`current:  ${REL.c.id}  update 6 \\(2026-11-19T11:20:00Z\\) commit 7c1c97df17c0`));
    assert.match(r.stdout, new RegExp(`rollback: ${REL.b.id}  update 4 `));
    assert.match(r.stdout, /settings change \(the ConfigMap is replaced, pods restart with them\):\n {2}~ DJANGO_LOG_LEVEL: DEBUG -> INFO\n/);
    assert.match(r.stdout, /\nnext: pulumi up --stack uat {3}\(one Deployment update per process, no build/);
    const text = fs.readFileSync(file, "utf8");
    assert.match(text, /^# uat: owned by the EMR team\nconfig:\n {2}# one replica is enough for testers\n/);
    const cfg = loadStackConfig(dir, "uat");
    assert.equal(cfg.releaseImage, REL.b.ref);
    assert.deepEqual(cfg.settings, { DJANGO_DEBUG: "false", DJANGO_ALLOWED_HOSTS: "emr-uat.example.com", DJANGO_LOG_LEVEL: "INFO" });
    assert.equal(cfg.webReplicas, 1, "other keys untouched");

    // --clear returns to building from source and says what happens to the settings.
    const c = cli(["--project", dir, "--stack", "uat", "--clear"]);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /cleared the rollback pin \(thinlayer:releaseImage\)/);
    assert.match(c.stdout, /thinlayer:settings stay as they are/);
    assert.match(c.stdout, /next: pulumi up --stack uat {3}\(builds from source again\)/);
    assert.equal(loadStackConfig(dir, "uat").releaseImage, "");
    assert.equal(loadStackConfig(dir, "uat").settings.DJANGO_LOG_LEVEL, "INFO");
});

test("thinlayer rollback --dry-run and --list change nothing", () => {
    const dir = tempProject();
    const file = path.join(dir, "Pulumi.uat.yaml");
    const before = fs.readFileSync(file, "utf8");
    const args = [
        "--project",
        dir,
        "--stack",
        "uat",
        "--history-file",
        path.join(fixtures, "uat-after-rollback/history.json"),
        "--exports-dir",
        path.join(fixtures, "uat-after-rollback/exports"),
    ];
    const d = cli([...args, "--to", REL.a.id, "--dry-run"]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /would write .*thinlayer:releaseImage = .*@sha256:41fd1756/);
    assert.match(d.stdout, /note: update 8 \(2026-11-20T09:40:00Z\) after the current release ended "failed"/);
    const l = cli([...args, "--list"]);
    assert.equal(l.status, 0, l.stderr);
    assert.deepEqual(
        l.stdout
            .trim()
            .split("\n")
            .slice(1)
            .map((x) => x.trim().split(/\s+/)[0]),
        [REL.c.id, REL.b.id, REL.a.id],
    );
    assert.match(l.stdout, new RegExp(`${REL.b.id} .*<- current`));
    assert.equal(fs.readFileSync(file, "utf8"), before);
});

test("thinlayer rollback runs the exact pulumi commands (a recording pulumi on PATH)", () => {
    const dir = tempProject();
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-fakepulumi-"));
    const log = path.join(bin, "calls.log");
    // Records its argv and serves the fixtures: history for `stack history`, the export for `--version N`.
    fs.writeFileSync(
        path.join(bin, "pulumi"),
        [
            "#!/bin/sh",
            `echo "$*" >> '${log}'`,
            `case "$2" in history) cat '${fixtures}/uat/history.json';; export) cat '${fixtures}/uat/exports/'"$6"'.json';; esac`,
        ].join("\n"),
        { mode: 0o755 },
    );
    const r = cli(["--project", dir, "--stack", "uat", "--steps", "2"], { ...process.env, PATH: `${bin}:${process.env.PATH}` });
    assert.equal(r.status, 0, r.stderr);
    const calls = fs.readFileSync(log, "utf8").trim().split("\n");
    assert.equal(calls[0], "stack history --json --stack uat --page-size 20");
    // Exports run concurrently (at most 4), so their order in the log is not fixed.
    assert.deepEqual(calls.slice(1).sort(), [
        "stack export --stack uat --version 2",
        "stack export --stack uat --version 4",
        "stack export --stack uat --version 6",
    ]);
    assert.equal(loadStackConfig(dir, "uat").releaseImage, REL.a.ref);
});

test("bad flags name the flag, the value, what is allowed and the fix", () => {
    const dir = tempProject();
    const cases: Array<[string[], RegExp]> = [
        [["--stack", "staging"], /--stack: got "staging"; expected one of prod, uat\. Fix: pass --stack <stack>/],
        [["--stack", "uat", "--steps", "0"], /--steps: got "0"; expected an integer from 1 to 1000\. Fix: e\.g\. --steps 1/],
        [
            ["--stack", "uat", "--steps", "1", "--clear"],
            /--steps and --clear: got \(both given\); expected one of --steps, --to, --image, --clear\. Fix: pass only one/,
        ],
        [["--stack", "uat", "--image", "thinlayer/app:latest"], /--image: got "thinlayer\/app:latest"; expected repo@sha256:<64 hex>/],
        [
            ["--stack", "uat", "--history-file", path.join(dir, "missing.json"), "--exports-dir", dir],
            /--history-file: got ".*missing\.json"; expected a readable file/,
        ],
    ];
    for (const [args, msg] of cases) {
        const r = cli(["--project", dir, ...args]);
        assert.equal(r.status, 1, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, msg);
    }
    const u = cli(["--stack", "uat", "--bogus"]);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /Unknown option '--bogus'[\s\S]*usage: thinlayer rollback/);
});

test("--image pins a digest directly (no history: DIY backends) and keeps the settings", () => {
    const dir = tempProject();
    const r = cli(["--project", dir, "--stack", "uat", "--image", REL.a.ref]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /settings unchanged/);
    const cfg = loadStackConfig(dir, "uat");
    assert.equal(cfg.releaseImage, REL.a.ref);
    assert.equal(cfg.settings.DJANGO_LOG_LEVEL, "INFO");
});
