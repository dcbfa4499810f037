/** The migrations section `thinlayer plan` prints: each migration to apply, its class, and the operations that decided it. */
import { PROJECT } from "../config";
import { ACK_KEY } from "./gate";
import { decidingOperations, type MigrationSafety } from "./model";

function baselineLine(s: MigrationSafety): string {
    const b = s.baseline;
    if (b.kind === "deployed") return `compared with ${b.source}: ${s.pending.length} of ${s.migrations.length} to apply`;
    if (b.kind === "fresh") return `${b.source}: nothing deployed yet, all ${s.migrations.length} apply on the first deploy (nothing serves, nothing is gated)`;
    if (b.source === "nothing")
        return `no baseline: all ${s.migrations.length} listed; pass --against <git ref> or --deployed to see only those a deploy applies`;
    return `baseline unknown, ${b.reason}: all ${s.migrations.length} listed`;
}

/** The section's lines (no trailing newline). */
export function formatMigrationSafety(s: MigrationSafety, stack: string, opts: { pinned?: boolean } = {}): string[] {
    const out: string[] = [];
    out.push(`migrations to apply (${baselineLine(s)}):`);
    if (opts.pinned) out.push("  (rollback pin: pulumi up applies none of the checkout's migrations while the pin is set)");
    if (s.pending.length === 0) out.push("  none");
    const width = Math.max(0, ...s.pending.map((m) => m.id.length));
    for (const m of s.pending) {
        const verdict = m.class === "expand" ? "" : m.acknowledged ? "  acknowledged" : m.blocked ? "  BLOCKED" : "";
        out.push(`  ${m.id.padEnd(width)}  ${m.class.padEnd(8)}${verdict}`.trimEnd());
        const deciding = decidingOperations(m);
        const shown = deciding.length ? deciding : m.operations.filter((o) => !o.index.includes("."));
        for (const op of shown) {
            out.push(`      ${op.summary}${op.line !== null ? ` (line ${op.line})` : ""}: ${op.reason}`);
            if (m.class !== "expand" && op.fix !== undefined && !m.acknowledged) out.push(`        fix: ${op.fix}`);
        }
        if (shown.length === 0) out.push("      (no operations)");
    }
    const blocked = s.pending.filter((m) => m.blocked);
    if (blocked.length) {
        out.push(
            `  gate: BLOCKED — \`pulumi preview/up --stack ${stack}\` fails until each is split into expand/contract steps or acknowledged in Pulumi.${stack}.yaml:`,
        );
        out.push(`      ${PROJECT}:${ACK_KEY}: [${blocked.map((m) => m.id).join(", ")}]`);
    } else if (s.pending.length) {
        out.push(`  gate: passes${s.pending.some((m) => m.acknowledged) ? " (with acknowledgements)" : ""}`);
    }
    for (const id of s.staleAcknowledgements) out.push(`  note: ${PROJECT}:${ACK_KEY} lists ${id}, which this deploy does not apply: remove it`);
    return out;
}
