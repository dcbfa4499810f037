/**
 * `thinlayer plan --stack <s> [--json | --markdown] [--explain] [--no-cache] [--registry-check]`
 *
 * Offline by default: computes every hash from files and the stack file and shows what a deploy
 * would build. Whether an image already exists needs the registry, so the status is "unknown"
 * unless --registry-check asks it (lib/build/ensure.ts `tagExists`, which never throws).
 */
import { formatBytes } from "../lib/format";
import { parseArgs } from "node:util";
import * as path from "node:path";
import { listStacks, loadProjectSchema, loadStackConfig, parseStackConfig, readStackFile, type StackConfig } from "../lib/config";
import { inputError } from "../lib/errors";
import { PROJECT_ROOT } from "../lib/root";
import { computePlan, type ImagePlan, type Plan } from "../lib/plan";
// Static, not import(): the CLI runs under tsx's CommonJS hook, which does not resolve dynamic imports.
import { tagExists } from "../lib/build/ensure";
import { formatMigrationSafety, planMigrationSafety, type MigrationSafety, type PlanBaseline } from "../lib/migrations";
import { pulumi } from "./rollback";
import { receiptStack, renderReceipt, type PlanJson } from "../lib/receipt";

const USAGE = `usage: thinlayer plan --stack <stack> [--json | --markdown] [--explain] [--no-cache] [--registry-check] [--against <git ref> | --deployed]

  --stack <s>        stack to plan (a Pulumi.<s>.yaml next to Pulumi.yaml); with --markdown it may
                     be given more than once
  --json             print the plan as one JSON object
  --markdown         print the cost receipt (GitHub markdown, one section per stack): reuse or
                     build per image, inputs, bytes to upload, migrations, settings keys, warnings
  --explain          list the input files of each image (and the migration files)
  --no-cache         use neither the input snapshots, the stat cache nor the migration verdicts
                     (same result, every file re-read and classified)
  --registry-check   ask the registry whether each tag exists (build / reuse); needs network
                     and credentials, so it is off by default ("unknown")
  --registry <host>  the registry to plan for, in place of thinlayer:registry (validated the same
                     way): e.g. the account's ECR host <account>.dkr.ecr.<region>.amazonaws.com,
                     which a stack with registry "" deploys to but cannot name offline
  --against <ref>    migrations to apply = those in the checkout and not at this git ref (a pull
                     request's target branch, e.g. origin/main)
  --deployed         migrations to apply = those not in the stack's deployed release (its
                     \`migrations\` output; runs \`pulumi stack output\`, needs the backend login)
                     (neither: every migration is listed and classified)
  --project <dir>    project directory (default: the one holding this CLI)`;

export type ImageStatus = "build" | "reuse" | "unknown" | "pinned";

export interface StatusInfo {
    status: ImageStatus;
    reason: string;
}

/** Parses argv, computes the plan, prints it; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: {
                stack: { type: "string", multiple: true },
                json: { type: "boolean", default: false },
                markdown: { type: "boolean", default: false },
                explain: { type: "boolean", default: false },
                "no-cache": { type: "boolean", default: false },
                "registry-check": { type: "boolean", default: false },
                registry: { type: "string" },
                against: { type: "string" },
                deployed: { type: "boolean", default: false },
                project: { type: "string" },
                help: { type: "boolean", short: "h", default: false },
            },
            strict: true,
        }));
    } catch (e) {
        process.stderr.write(`thinlayer plan: ${(e as Error).message}\n\n${USAGE}\n`);
        return 2;
    }
    if (values.help) {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    const projectDir = path.resolve(values.project ?? PROJECT_ROOT);
    const stacks = values.stack ?? [];
    if (stacks.length === 0 || stacks.includes("")) {
        throw inputError({
            input: "--stack",
            value: "(missing)",
            allowed: `one of ${listStacks(projectDir).join(", ")}`,
            fix: "pass --stack <stack>, e.g. npm run plan -- --stack uat",
        });
    }
    if (values.markdown && values.json) {
        throw inputError({
            input: "--markdown and --json",
            value: "(both given)",
            allowed: "one output format",
            fix: "pass --json for the plan object, or --markdown for the cost receipt",
        });
    }
    // --registry goes through the config parser, so it meets the same host and repository-name rules.
    const registry = values.registry;
    const loadCfg = (stack: string): StackConfig =>
        registry === undefined
            ? loadStackConfig(projectDir, stack)
            : parseStackConfig({ ...readStackFile(projectDir, stack), registry }, loadProjectSchema(projectDir), { projectDir, stack });
    if (values.markdown) {
        const receipts = [];
        for (const stack of [...new Set(stacks)]) {
            const cfg = loadCfg(stack);
            const baseline = await migrationBaseline(values.against, values.deployed, projectDir, cfg.stack);
            const one = await planStack(cfg, { cache: !values["no-cache"], registryCheck: values["registry-check"], baseline });
            receipts.push(
                await receiptStack(
                    cfg,
                    { ...one.plan, status: one.status, registry: cfg.registry, releaseImage: cfg.releaseImage || null, migrationSafety: one.migrationSafety },
                    baseline,
                    values["registry-check"],
                ),
            );
        }
        process.stdout.write(renderReceipt(receipts));
        return 0;
    }
    if (stacks.length > 1) {
        throw inputError({
            input: "--stack",
            value: stacks.join(", "),
            allowed: "one stack (several only with --markdown)",
            fix: "run plan once per stack, or pass --markdown for a receipt of all of them",
        });
    }
    const started = process.hrtime.bigint();
    const cfg = loadCfg(stacks[0]);
    const baseline = await migrationBaseline(values.against, values.deployed, projectDir, cfg.stack);
    const { plan, status, migrationSafety } = await planStack(cfg, { cache: !values["no-cache"], registryCheck: values["registry-check"], baseline });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (values.json) {
        process.stdout.write(
            JSON.stringify(
                { ...plan, status, registry: cfg.registry, releaseImage: cfg.releaseImage || null, migrationSafety, millis: Math.round(ms) },
                null,
                2,
            ) + "\n",
        );
    } else {
        process.stdout.write(formatPlan(plan, status, { explain: values.explain, projectDir, millis: ms, releaseImage: cfg.releaseImage, migrationSafety }));
    }
    return 0;
}

/** One stack's plan, image status and migration safety: what --json prints and the receipt renders. */
async function planStack(
    cfg: StackConfig,
    o: { cache: boolean; registryCheck: boolean; baseline: PlanBaseline },
): Promise<Pick<PlanJson, "status" | "migrationSafety"> & { plan: Plan }> {
    const plan = await computePlan(cfg, { cache: o.cache });
    const status = cfg.releaseImage !== "" ? pinnedStatus(cfg.releaseImage) : o.registryCheck ? await registryStatus(cfg, plan) : offlineStatus();
    const migrationSafety = await planMigrationSafety(cfg, plan.migrations, o.baseline, o.cache);
    return { plan, status, migrationSafety };
}

/** What the migrations are compared with: a git ref, the stack's outputs, or nothing. */
async function migrationBaseline(against: string | undefined, deployed: boolean, projectDir: string, stack: string): Promise<PlanBaseline> {
    if (against !== undefined && deployed) {
        throw inputError({
            input: "--against and --deployed",
            value: "(both given)",
            allowed: "one baseline for the migrations",
            fix: "pass --against <git ref> for a pull request, or --deployed for the stack's release",
        });
    }
    if (against !== undefined) return { against };
    if (!deployed) return { none: true };
    const text = await pulumi(["stack", "output", "--json", "--stack", stack], projectDir);
    let outputs: unknown;
    try {
        outputs = JSON.parse(text);
    } catch {
        throw inputError({
            input: `pulumi stack output --json --stack ${stack}`,
            value: JSON.stringify(text.slice(0, 80)),
            allowed: "a JSON object of stack outputs",
            fix: "check the Pulumi CLI and the backend login",
        });
    }
    return { outputs: (outputs ?? {}) as Record<string, unknown>, source: `stack ${stack}'s deployed release` };
}

/** A rollback pin deploys a prior image: nothing is built from this checkout. */
function pinnedStatus(releaseImage: string): Record<"base" | "app", StatusInfo> {
    const s: StatusInfo = { status: "pinned", reason: `rollback pin ${releaseImage}: nothing is built` };
    return { base: s, app: s };
}

function offlineStatus(): Record<"base" | "app", StatusInfo> {
    const s: StatusInfo = { status: "unknown", reason: "no registry access" };
    return { base: s, app: s };
}

async function registryStatus(cfg: StackConfig, plan: Plan): Promise<Record<"base" | "app", StatusInfo>> {
    if (cfg.registry === "") {
        const s: StatusInfo = { status: "unknown", reason: "registry is the stack's ECR registry, not known offline (set thinlayer:registry)" };
        return { base: s, app: s };
    }
    const one = async (img: ImagePlan): Promise<StatusInfo> => {
        const r = await tagExists(`${cfg.registry}/${img.repository}`, img.tag);
        return r === "exists"
            ? { status: "reuse", reason: "tag exists in the registry" }
            : r === "missing"
              ? { status: "build", reason: "tag not in the registry" }
              : { status: "unknown", reason: "registry did not answer (network or credentials)" };
    };
    const [base, app] = await Promise.all([one(plan.base), one(plan.app)]);
    return { base, app };
}

/** Renders the plan as the table `thinlayer plan` prints. */
function formatPlan(
    plan: Plan,
    status: Record<"base" | "app", StatusInfo>,
    opts: { explain: boolean; projectDir: string; millis?: number; releaseImage?: string; migrationSafety?: MigrationSafety },
): string {
    const rel = (p: string) => path.relative(opts.projectDir, p) || ".";
    const rows = [
        ["IMAGE", "REPOSITORY:TAG", "FILES", "SIZE", "STATUS"],
        ...([plan.base, plan.app] as const).map((img) => [
            img.image,
            `${img.repository}:${img.tag}`,
            String(img.files.length),
            formatBytes(img.totalBytes),
            `${status[img.image].status} (${status[img.image].reason})`,
        ]),
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) =>
        r
            .map((cell, c) => (c === 2 || c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
            .join("  ")
            .trimEnd();
    const out: string[] = [];
    out.push(`thinlayer plan: stack ${plan.stack}, platform ${plan.platform}, context ${rel(plan.base.contextDir)}`);
    out.push("");
    out.push(line(rows[0]));
    for (const r of rows.slice(1)) out.push(line(r));
    out.push("");
    out.push(`base hash   ${plan.base.hash}  (${rel(plan.base.dockerfile)})`);
    out.push(`app hash    ${plan.app.hash}  (${rel(plan.app.dockerfile)}${plan.app.copyOnly ? ", copy-only: daemonless build" : ", needs a builder"})`);
    out.push(`migrations  ${plan.migrations.hash}  (${plan.migrations.files.length} files)`);
    out.push(`settings    ${plan.settings.hash}  (${Object.keys(plan.settings.values).length} values)`);
    out.push(`release     ${plan.releaseId}`);
    if (opts.releaseImage) {
        out.push("");
        out.push(`PINNED: thinlayer:releaseImage = ${opts.releaseImage}`);
        out.push("  pulumi up deploys that image and builds nothing; the hashes above are this checkout's.");
        out.push("  Return to building from source with: thinlayer rollback --clear --stack " + plan.stack);
    }
    if (opts.migrationSafety !== undefined) {
        out.push("");
        out.push(...formatMigrationSafety(opts.migrationSafety, plan.stack, { pinned: Boolean(opts.releaseImage) }));
    }
    const warnings = [...plan.base.warnings.map((w) => `base: ${w}`), ...plan.app.warnings.map((w) => `app: ${w}`)];
    if (warnings.length) {
        out.push("");
        out.push("warnings:");
        for (const w of warnings) out.push(`  - ${w}`);
    }
    if (opts.explain) {
        for (const img of [plan.base, plan.app]) {
            out.push("");
            out.push(`${img.image} inputs (${img.files.length} files, ${formatBytes(img.totalBytes)}):`);
            for (const f of img.files) out.push(`  ${f.sha256.slice(0, 12)}  ${f.executable ? "x" : "-"}  ${formatBytes(f.size).padStart(10)}  ${f.path}`);
        }
        out.push("");
        out.push(`migration inputs (${plan.migrations.files.length} files):`);
        for (const f of plan.migrations.files) out.push(`  ${f.sha256.slice(0, 12)}  ${f.path}`);
    }
    if (opts.millis !== undefined) {
        out.push("");
        out.push(`computed in ${Math.round(opts.millis)} ms, offline${status.base.reason === "no registry access" ? " (status needs --registry-check)" : ""}`);
    }
    return out.join("\n") + "\n";
}
