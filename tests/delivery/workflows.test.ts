/**
 * The GitHub workflows: valid against the GitHub workflow schema (@action-validator/core, the
 * published schemas from SchemaStore compiled to WASM), wired the way the README says, and every
 * command they run exists in package.json or the thinlayer CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as YAML from "yaml";
import { validateWorkflow } from "@action-validator/core";

const root = path.resolve(__dirname, "../..");
const wfDir = path.join(root, ".github/workflows");
const WORKFLOWS = ["preview.yml", "deploy.yml"];

interface Step {
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
    if?: string;
}
interface Job {
    "runs-on": string;
    needs?: string | string[];
    if?: string;
    environment?: string;
    strategy?: { matrix?: Record<string, unknown> };
    concurrency?: { group: string; "cancel-in-progress": boolean | string };
    permissions?: Record<string, string>;
    env?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    name: string;
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    jobs: Record<string, Job>;
}

const text = (f: string) => fs.readFileSync(path.join(wfDir, f), "utf8");
const load = (f: string) => YAML.parse(text(f)) as Workflow;
const steps = (wf: Workflow) => Object.values(wf.jobs).flatMap((j) => j.steps);
const usesOf = (wf: Workflow, action: string) => steps(wf).filter((s) => s.uses?.split("@")[0] === action);

/**
 * Inputs (a subset, covering what we use) each action declares in its action.yml, at the major version we pin
 * (pulumi/actions v6: action.yml at 4ddd432; aws-actions/configure-aws-credentials v4;
 * actions/setup-node v4; actions/checkout v4). A misspelt input is ignored by GitHub with only a
 * warning, so this is checked here.
 */
const ACTION_INPUTS: Record<string, string[]> = {
    "actions/checkout": ["repository", "ref", "token", "fetch-depth", "path", "clean", "lfs", "submodules"],
    "actions/setup-node": ["node-version", "node-version-file", "cache", "cache-dependency-path", "registry-url", "check-latest"],
    "aws-actions/configure-aws-credentials": [
        "role-to-assume",
        "aws-region",
        "role-session-name",
        "role-duration-seconds",
        "audience",
        "mask-aws-account-id",
        "role-external-id",
        "role-skip-session-tagging",
        "output-credentials",
        "unset-current-credentials",
    ],
    "pulumi/actions": [
        "command",
        "stack-name",
        "pulumi-version",
        "pulumi-version-file",
        "work-dir",
        "comment-on-pr",
        "comment-on-pr-number",
        "comment-on-summary",
        "github-token",
        "cloud-url",
        "secrets-provider",
        "parallel",
        "message",
        "config-map",
        "expect-no-changes",
        "diff",
        "replace",
        "target",
        "target-dependents",
        "policyPacks",
        "policyPackConfigs",
        "refresh",
        "upsert",
        "remove",
        "edit-pr-comment",
        "color",
        "exclude-protected",
        "plan",
        "suppress-outputs",
        "suppress-progress",
        "always-include-summary",
    ],
};

for (const f of WORKFLOWS) {
    test(`${f} is valid against the GitHub workflow schema`, () => {
        const state = validateWorkflow(text(f));
        assert.equal(state.actionType, "workflow");
        assert.deepEqual(state.errors, [], JSON.stringify(state.errors, null, 2));
    });
}

test("the schema check is live: a misspelt key and a wrong type in a workflow are reported", () => {
    const broken = text("deploy.yml").replace("runs-on:", "runs-onn:").replace("cancel-in-progress: false", "cancel-in-progress: [no]");
    const state = validateWorkflow(broken);
    const flat = JSON.stringify(state.errors);
    assert.ok(state.errors.length > 0);
    assert.match(flat, /runs-onn/);
});

test("every action is pinned by a major version tag or a commit, and given only inputs it declares", () => {
    for (const f of WORKFLOWS) {
        for (const s of steps(load(f)).filter((x) => x.uses !== undefined)) {
            const [action, ref] = s.uses!.split("@");
            assert.match(ref ?? "", /^(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/, `${f}: ${s.uses} is not pinned`);
            const known = ACTION_INPUTS[action];
            assert.ok(known, `${f}: ${action} has no recorded inputs in this test; add them from its action.yml`);
            for (const k of Object.keys(s.with ?? {})) assert.ok(known.includes(k), `${f}: ${action} has no input ${k}`);
        }
    }
});

test("preview.yml: on pull requests, tests first, then plan and a commented, policy-checked preview of uat and prod", () => {
    const wf = load("preview.yml");
    assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
    const runs = steps(wf).map((s) => s.run ?? "");
    assert.ok(
        runs.some((r) => r.includes("./.ci/run")),
        "the tests run through .ci/run (apt packages, npm ci, npm test)",
    );
    const preview = wf.jobs.preview;
    assert.equal(preview.needs, "test");
    assert.deepEqual(preview.strategy?.matrix?.stack, ["uat", "prod"]);
    assert.equal(preview.permissions?.["id-token"], "write");
    assert.equal(preview.permissions?.["pull-requests"], "write");
    assert.ok(preview.steps.some((s) => s.run === "npm ci --no-audit --no-fund"));
    const planIdx = preview.steps.findIndex((s) => s.run === "npm run plan -- --stack ${{ matrix.stack }}");
    const [pulumi] = usesOf(wf, "pulumi/actions");
    assert.ok(planIdx >= 0 && planIdx < preview.steps.indexOf(pulumi), "plan runs before the preview");
    assert.equal(pulumi.with?.command, "preview");
    assert.equal(pulumi.with?.["stack-name"], "${{ matrix.stack }}");
    assert.equal(pulumi.with?.["comment-on-pr"], true);
    assert.equal(pulumi.with?.["edit-pr-comment"], true);
    assert.equal(pulumi.with?.policyPacks, "policy/");
});

test("deploy.yml: uat branch -> uat stack, main -> prod, one queued deploy per stack, OIDC role, configurable backend", () => {
    const wf = load("deploy.yml");
    assert.deepEqual(wf.on, { push: { branches: ["uat", "main"] } });
    assert.equal(wf.permissions?.["id-token"], "write");
    const job = wf.jobs.deploy;
    const stackExpr = "${{ github.ref_name == 'main' && 'prod' || 'uat' }}";
    assert.equal(job.env?.STACK, stackExpr);
    assert.equal(job.environment, stackExpr);
    assert.equal(job.concurrency?.group, `pulumi-${stackExpr}`);
    assert.equal(job.concurrency?.["cancel-in-progress"], false);
    const [aws] = usesOf(wf, "aws-actions/configure-aws-credentials");
    assert.equal(aws.with?.["role-to-assume"], "${{ vars.AWS_ROLE_ARN }}");
    const [pulumi] = usesOf(wf, "pulumi/actions");
    assert.equal(pulumi.with?.command, "up");
    assert.equal(pulumi.with?.["stack-name"], "${{ env.STACK }}");
    assert.equal(pulumi.with?.policyPacks, "policy/");
    assert.ok(job.steps.indexOf(aws) < job.steps.indexOf(pulumi));
    for (const f of WORKFLOWS) {
        const wfx = load(f);
        for (const p of usesOf(wfx, "pulumi/actions")) {
            assert.equal(p.with?.["cloud-url"], "${{ vars.PULUMI_BACKEND_URL }}", `${f}: backend from a variable`);
            assert.equal(p.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}", `${f}: token from a secret`);
        }
        assert.doesNotMatch(text(f), /aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/, `${f}: no long-lived AWS keys`);
    }
});

/** The subcommands the dispatcher knows, as it reports them for an unknown command. */
function cliCommands(): string[] {
    const r = spawnSync(process.execPath, [path.join(root, "bin/thinlayer.js"), "no-such-command"], { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    const m = /expected one of ([a-z, -]+)\./.exec(r.stderr);
    assert.ok(m, `unexpected dispatcher output: ${r.stderr}`);
    return m[1].split(", ");
}

test("every command the workflows run exists: npm scripts, thinlayer subcommands, .ci/run, the policy pack", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const commands = cliCommands();
    assert.ok(commands.includes("plan") && commands.includes("rollback"), `dispatcher commands: ${commands.join(", ")}`);
    let checked = 0;
    for (const f of WORKFLOWS) {
        const wf = load(f);
        for (const s of steps(wf)) {
            for (const m of (s.run ?? "").matchAll(/\bnpm (?:run (\S+)|(test|ci))\b/g)) {
                const script = m[1] ?? (m[2] === "test" ? "test" : undefined);
                if (script === undefined) continue; // npm ci is npm's own
                assert.ok(script in pkg.scripts, `${f}: npm run ${script} has no script in package.json`);
                // A script that runs the CLI must name a subcommand the dispatcher knows.
                const sub = /thinlayer\.ts (\S+)/.exec(pkg.scripts[script])?.[1];
                if (sub !== undefined) assert.ok(commands.includes(sub), `${f}: npm run ${script} runs thinlayer ${sub}, unknown to the CLI`);
                checked++;
            }
            for (const m of (s.run ?? "").matchAll(/\bthinlayer (\S+)/g)) {
                assert.ok(commands.includes(m[1]), `${f}: thinlayer ${m[1]} is not a CLI command`);
                checked++;
            }
            for (const m of (s.run ?? "").matchAll(/(?:^|\s)\.\/(\S+)/g)) {
                const p = path.join(root, m[1]);
                assert.ok(fs.existsSync(p) && (fs.statSync(p).mode & 0o111) !== 0, `${f}: ./${m[1]} is not an executable file`);
                checked++;
            }
            const packs = s.with?.policyPacks;
            if (typeof packs === "string") {
                for (const p of packs.split("\n").filter(Boolean)) {
                    assert.ok(fs.existsSync(path.join(root, p, "PulumiPolicy.yaml")), `${f}: policy pack ${p} has no PulumiPolicy.yaml`);
                    checked++;
                }
            }
        }
    }
    assert.ok(checked >= 5, `only ${checked} commands found; did the extraction break?`);
});
