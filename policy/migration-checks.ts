/**
 * The migration gate, re-checked by the policy pack from the program's `migrationGate` stack output
 * (lib/migrations migrationGateOutput), which the engine hands a stack policy as the props of the
 * root `pulumi:pulumi:Stack` resource (in preview too). The program's own gate already fails
 * preview; this is the org-enforced second lock (a policy group runs it on every stack), so a
 * program whose gate was removed or bypassed still cannot apply an unacknowledged contract or
 * unknown migration. Pure; no Pulumi imports.
 */
import type { Props } from "./checks";

export const STACK_TYPE = "pulumi:pulumi:Stack";

interface GateEntry {
    id?: unknown;
    class?: unknown;
    acknowledged?: unknown;
    blocked?: unknown;
    operations?: unknown;
}

/** Problems in the stack's `migrationGate` output: one per migration applied that is neither expand nor acknowledged. */
export function migrationGateProblems(stackProps: Props): string[] {
    const gate = stackProps.migrationGate as { version?: unknown; baseline?: unknown; pinned?: unknown; pending?: unknown } | undefined;
    if (gate === undefined || gate === null || typeof gate !== "object" || !Array.isArray(gate.pending)) return [];
    if (gate.pinned === true || gate.baseline === "fresh") return [];
    return (gate.pending as GateEntry[])
        .filter((m) => m.class !== "expand" && m.acknowledged !== true)
        .map((m) => {
            const ops = Array.isArray(m.operations) && m.operations.length ? ` (${m.operations.join(", ")})` : "";
            return `migration ${String(m.id)} is ${String(m.class)}${ops} and not acknowledged: the release still serving breaks while it runs. Expected only expand migrations, or the migration listed in thinlayer:acknowledgedMigrations. Fix: split it into expand and contract steps (thinlayer plan --stack <s> --deployed shows the fix), or acknowledge it for this stack once the serving release no longer depends on what it changes.`;
        });
}

/** True when the stack runs the thinlayer program (it exports appHash) but not the migration verdict. */
export function migrationGateMissing(stackProps: Props): boolean {
    return typeof stackProps.appHash === "string" && (stackProps.migrationGate === undefined || stackProps.migrationGate === null);
}
