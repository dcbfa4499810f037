/**
 * The cost receipt as GitHub-flavoured markdown: per stack, what each image costs (reuse, build
 * daemonless, build with a builder), its inputs, the bytes a deploy uploads, the migrations it
 * applies with their classes, the settings keys it changes, and the warnings. Pure: a function of
 * the plan JSON and the receipt facts (model.ts), so the same plan always renders the same text.
 */
import { formatBytes } from "../format";
import { decidingOperations } from "../migrations/model";
import type { ImagePlan } from "../plan";
import { type ReceiptStack, type UploadEstimate } from "./model";

/** 1023 B, 1.5 KiB, 12.0 MiB, with the exact count for anything over 1 KiB. */
export function bytesText(n: number): string {
    return n < 1024 ? formatBytes(n) : `${formatBytes(n)} (${n} B)`;
}

/** A table cell: no pipe or newline may break the row. */
function cell(s: string): string {
    return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function code(s: string): string {
    return "`" + s.replace(/`/g, "'") + "`";
}

function decision(r: ReceiptStack, img: ImagePlan): string {
    const st = r.plan.status[img.image];
    const how = img.copyOnly ? "build daemonless" : `build with a builder (${r.builder})`;
    if (st.status === "pinned") return "pinned: nothing is built";
    if (st.status === "reuse") return "**reuse** (tag exists in the registry)";
    if (st.status === "build") return `**${how}** (tag not in the registry)`;
    const why = r.registryCheck ? `unknown (${st.reason})` : "unknown (no registry check)";
    return `${why}; if the tag is missing: ${how}`;
}

function upload(u: UploadEstimate, status: string): string {
    if (u.kind === "none") return `0 B (${u.reason})`;
    if (u.kind === "unknown") return `unknown: ${u.reason}`;
    const size = status === "build" ? `**${bytesText(u.bytes)}**` : `${bytesText(u.bytes)} if built`;
    return `${size}: the app layer as gzip, measured (${u.entries} entries); base layers are mounted, not uploaded`;
}

function imagesTable(r: ReceiptStack): string[] {
    const out = ["| image | repository:tag | decision | inputs | upload |", "|---|---|---|---|---|"];
    for (const img of [r.plan.base, r.plan.app]) {
        const inputs = `${img.files.length} files, ${bytesText(img.totalBytes)}`;
        out.push(
            `| ${img.image} | ${code(`${img.repository}:${img.tag}`)} | ${cell(decision(r, img))} | ${cell(inputs)} | ${cell(upload(r.upload[img.image], r.plan.status[img.image].status))} |`,
        );
    }
    return out;
}

function migrationsSection(r: ReceiptStack): string[] {
    const s = r.plan.migrationSafety;
    const b = s.baseline;
    const against =
        b.kind === "deployed"
            ? `compared with ${b.source}`
            : b.kind === "fresh"
              ? `${b.source}: nothing deployed yet`
              : b.source === "nothing"
                ? "no baseline: every migration listed"
                : `baseline unknown (${b.reason}): every migration listed`;
    const out = [`**Migrations to apply** (${cell(against)}): ${s.pending.length} of ${s.migrations.length}`];
    if (r.plan.releaseImage !== null) out.push("", "_Rollback pin: `pulumi up` applies none of the checkout's migrations while the pin is set._");
    if (s.pending.length === 0) return [...out, "", "none"];
    out.push("", "| migration | class | gate | operations |", "|---|---|---|---|");
    for (const m of s.pending) {
        const gate = m.class === "expand" ? "passes" : m.acknowledged ? "acknowledged" : m.blocked ? "**BLOCKED**" : "passes (first deploy)";
        const deciding = decidingOperations(m);
        const ops = (deciding.length ? deciding : m.operations.filter((o) => !o.index.includes("."))).map(
            (o) => `${o.summary}${o.line !== null ? ` (line ${o.line})` : ""}`,
        );
        out.push(`| ${code(m.id)} | ${m.class} | ${gate} | ${cell(ops.length ? ops.join("; ") : "(no operations)")} |`);
    }
    return out;
}

function settingsSection(r: ReceiptStack): string[] {
    const c = r.settings;
    if (c.kind === "unknown") return [`**Settings keys that change**: unknown, ${cell(c.reason)}`];
    const parts = (
        [
            ["changed", c.changed],
            ["added", c.added],
            ["removed", c.removed],
        ] as const
    )
        .filter(([, keys]) => keys.length > 0)
        .map(([what, keys]) => `${what} ${keys.map(code).join(", ")}`);
    return [`**Settings keys that change** (compared with ${cell(c.source)}): ${parts.length ? parts.join("; ") : "none"}`];
}

/** Every warning of the stack: the images', the migration gate's, and a rollback pin. */
export function receiptWarnings(r: ReceiptStack): string[] {
    // Absolute paths would differ on every runner and say nothing a reviewer needs.
    const rel = (x: string) => x.split(`${r.projectDir.replace(/\/+$/, "")}/`).join("");
    const w = [...r.plan.base.warnings.map((x) => `base: ${rel(x)}`), ...r.plan.app.warnings.map((x) => `app: ${rel(x)}`)];
    if (r.plan.releaseImage !== null) w.push(`rollback pin thinlayer:releaseImage = ${r.plan.releaseImage}: \`pulumi up\` deploys it and builds nothing`);
    const blocked = r.plan.migrationSafety.pending.filter((m) => m.blocked);
    if (blocked.length)
        w.push(
            `migration gate: \`pulumi preview --stack ${r.plan.stack}\` fails until ${blocked.map((m) => m.id).join(", ")} ${blocked.length > 1 ? "are" : "is"} split into expand/contract steps or acknowledged in thinlayer:acknowledgedMigrations`,
        );
    for (const id of r.plan.migrationSafety.staleAcknowledgements)
        w.push(`thinlayer:acknowledgedMigrations lists ${id}, which this deploy does not apply: remove it`);
    return w;
}

/** One stack's section. */
export function renderStack(r: ReceiptStack): string {
    const p = r.plan;
    const out = [
        `### Cost receipt: stack ${code(p.stack)}`,
        "",
        `platform ${code(p.platform)} · release ${code(p.releaseId)} · registry ${p.registry === "" ? "the stack's ECR registry" : code(p.registry)}${r.registryCheck ? "" : " (not checked)"}`,
        "",
        ...imagesTable(r),
        "",
        ...migrationsSection(r),
        "",
        ...settingsSection(r),
    ];
    const warnings = receiptWarnings(r);
    out.push("", warnings.length ? "**Warnings**" : "**Warnings**: none");
    if (warnings.length) out.push("", ...warnings.map((w) => `- ${cell(w)}`));
    return out.join("\n") + "\n";
}

/**
 * The receipt of several stacks, one section each. No comment marker: the preview workflow runs one
 * stack per role and adds RECEIPT_MARKER once to the comment it assembles.
 */
export function renderReceipt(stacks: readonly ReceiptStack[]): string {
    return stacks.map(renderStack).join("\n");
}
