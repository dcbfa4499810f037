/**
 * The cost receipt of `thinlayer plan --markdown`: the facts beyond the plan JSON (the measured
 * upload, the settings keys that change) and the pure renderer. See docs/operations.md "Cost receipt".
 */
import type { StackConfig } from "../config";
import type { PlanBaseline } from "../migrations";
import type { PlanJson, ReceiptStack } from "./model";
import { settingsChange } from "./settings";
import { estimateUpload } from "./upload";

export * from "./model";
export { bytesText, receiptWarnings, renderReceipt, renderStack } from "./render";
export { diffSettings, settingsChange, settingsFromPairs } from "./settings";
export { estimateUpload } from "./upload";

/** Gathers one stack's receipt facts around its plan JSON. */
export async function receiptStack(
    cfg: Pick<StackConfig, "projectDir" | "stack" | "builder">,
    plan: PlanJson,
    baseline: PlanBaseline,
    registryCheck: boolean,
): Promise<ReceiptStack> {
    const [base, app, settings] = await Promise.all([
        estimateUpload(plan.base, plan.status.base.status, {}),
        estimateUpload(plan.app, plan.status.app.status, {}),
        settingsChange(cfg.projectDir, cfg.stack, plan.settings.values, baseline),
    ]);
    return { plan, projectDir: cfg.projectDir, builder: cfg.builder, registryCheck, upload: { base, app }, settings };
}
