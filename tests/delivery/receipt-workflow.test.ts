/**
 * The cost receipt in preview.yml: one job for both stacks, each planned with --markdown and
 * --registry-check under that stack's preview role, into the job summary and one pull request
 * comment found by its marker. The comment step's script runs for real here, with a stand-in `gh`
 * (it replays a comment list through the real jq and records the call): it edits the comment that
 * carries the marker, and posts a new one only when there is none.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as YAML from "yaml";
import { RECEIPT_MARKER } from "../../lib/receipt";
import { needTools } from "../helpers/tools";
import { tempDir } from "../lib/inputs.fixtures";

const root = path.resolve(__dirname, "../..");

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
    if?: string;
}
interface Job {
    if?: string;
    permissions?: Record<string, string>;
    concurrency?: { group: string };
    env?: Record<string, string>;
    steps: Step[];
}

const wf = YAML.parse(fs.readFileSync(path.join(root, ".github/workflows/preview.yml"), "utf8")) as { jobs: Record<string, Job> };
const job = wf.jobs.receipt;

test("preview.yml receipt job: each stack under its preview role, --markdown --registry-check --against the target branch", () => {
    assert.ok(job, "preview.yml has a receipt job");
    assert.equal(job.if, wf.jobs.preview.if, "the same fork guard as the preview (OIDC tokens)");
    assert.equal(job.permissions?.["id-token"], "write");
    assert.equal(job.permissions?.["pull-requests"], "write");
    assert.equal(job.concurrency?.group, "receipt-${{ github.event.pull_request.number }}", "one run per pull request edits the comment");
    const previewRole = wf.jobs.preview.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"))?.with?.["role-to-assume"] as string;
    for (const stack of ["uat", "prod"]) {
        const roleVar = `vars.AWS_PREVIEW_ROLE_ARN_${stack.toUpperCase()}`;
        assert.ok(previewRole.includes(roleVar), `the preview job assumes ${roleVar}`);
        const roleIdx = job.steps.findIndex(
            (s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@") && s.with?.["role-to-assume"] === `\${{ ${roleVar} }}`,
        );
        const planIdx = job.steps.findIndex((s) => s.env?.STACK === stack);
        assert.ok(roleIdx >= 0 && planIdx === roleIdx + 1, `${stack}: the receipt step follows its role`);
        const run = job.steps[planIdx].run ?? "";
        assert.match(run, /node bin\/thinlayer\.js plan --stack "\$STACK" --markdown --registry-check --against "origin\/\$BASE_REF"/);
        assert.match(run, /> "\$RUNNER_TEMP\/receipt-\$STACK\.md"|> "\$out"/);
    }
    const fetchStep = job.steps.find((s) => s.run?.includes("git fetch"));
    assert.match(fetchStep?.run ?? "", /refs\/remotes\/origin\/\$\{BASE_REF\}/, "origin/<base> exists for --against");
    assert.equal(job.env?.BASE_REF, "${{ github.base_ref }}");
});

/** Runs the comment step's script with a stand-in gh whose comment list is `comments`; returns its calls and outputs. */
function runCommentStep(comments: unknown[]): { code: number | null; stderr: string; calls: string[]; summary: string; posted: string } {
    const step = job.steps.find((s) => s.if === "always()");
    assert.ok(step?.run, "a comment step that runs even when a receipt step failed");
    const dir = tempDir("thinlayer-receipt-wf-");
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(dir, "comments.json"), JSON.stringify(comments));
    fs.writeFileSync(path.join(dir, "receipt-uat.md"), "### Cost receipt: stack `uat`\n\nuat body\n");
    // prod's receipt is missing: the step says so instead of failing.
    fs.writeFileSync(
        path.join(bin, "gh"),
        `#!/bin/bash
echo "$*" >> "${dir}/calls"
if [ "$2" = "--paginate" ]; then jq -r "$5" "${dir}/comments.json"; exit; fi
for a in "$@"; do case "$a" in body=@*) cp "\${a#body=@}" "${dir}/posted" ;; esac; done
`,
        { mode: 0o755 },
    );
    const r = spawnSync("bash", ["-e", "-c", step.run], {
        cwd: dir,
        encoding: "utf8",
        env: {
            ...process.env,
            PATH: `${bin}:${process.env.PATH}`,
            RUNNER_TEMP: dir,
            GITHUB_STEP_SUMMARY: path.join(dir, "summary"),
            GITHUB_REPOSITORY: "o/r",
            PR: "7",
            HEAD_SHA: "abc123",
            BASE_REF: "main",
            GH_TOKEN: "x",
        },
    });
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : "");
    return { code: r.status, stderr: r.stderr, calls: read("calls").trim().split("\n"), summary: read("summary"), posted: read("posted") };
}

test("the comment step edits the bot's comment that carries the marker, and writes the job summary", (t) => {
    if (!needTools(t, "jq", "bash")) return;
    const r = runCommentStep([
        { id: 1, user: { login: "someone" }, body: `${RECEIPT_MARKER}\nquoted by a person` },
        { id: 2, user: { login: "github-actions[bot]" }, body: "the pulumi preview comment" },
        { id: 3, user: { login: "github-actions[bot]" }, body: `${RECEIPT_MARKER}\n## Cost receipt\nold` },
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.calls.length, 2, r.calls.join("\n"));
    assert.match(r.calls[1], /^api --method PATCH repos\/o\/r\/issues\/comments\/3 -F body=@/);
    assert.ok(r.posted.startsWith(`${RECEIPT_MARKER}\n## Cost receipt\n`), r.posted);
    assert.ok(r.posted.includes("### Cost receipt: stack `uat`\n\nuat body\n"));
    assert.ok(r.posted.includes("### Cost receipt: stack `prod`\n\nno receipt: an earlier step failed"));
    assert.ok(r.posted.includes("abc123") && r.posted.includes("`origin/main`"));
    assert.equal(r.summary, r.posted, "the job summary shows the same receipt");
});

test("with no marked comment yet, the comment step posts one", (t) => {
    if (!needTools(t, "jq", "bash")) return;
    const r = runCommentStep([{ id: 2, user: { login: "github-actions[bot]" }, body: "the pulumi preview comment" }]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.calls[1], /^api --method POST repos\/o\/r\/issues\/7\/comments -F body=@/);
    assert.ok(r.posted.startsWith(RECEIPT_MARKER));
});
