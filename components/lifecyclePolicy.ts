/**
 * The ECR lifecycle policy of a thinlayer repository, as a pure function (awsx's
 * `buildLifecyclePolicy` pattern) so tests assert on the exact document.
 *
 * Rules, in priority order:
 *   1. untagged images expire after `untaggedDays` (failed pushes, superseded manifests);
 *   2. per tag prefix, when `stacks` are given: keep the newest `count` images each stack deployed.
 *      Every deploy of stack S points a keep tag `S-<image tag>` (e.g. prod-app-0123456789ab) at
 *      the image it ensured (`thinlayer ensure --keep-tag`), so the rule with tagPrefixList
 *      ["prod-app-"] counts only what prod deployed, whatever uat pushes;
 *   3. per tag prefix, keep only the newest `count` tagged images (app-… = the rollback window,
 *      deps-… = base images): images no stack rule matched (pushed, never deployed).
 * Tags outside every prefix are never expired: nothing a human pushed by hand disappears.
 *
 * ECR semantics the stack rules rely on: rules are evaluated in priority order, an image is
 * expired by at most one rule, and an image that matches the tag requirements of a higher-priority
 * rule is never expired by a lower-priority one (the count rule 3 cannot touch a prod-deployed
 * image). A rule with several prefixes matches an image carrying ALL of them (any of its tags each).
 * The trap: an image both uat and prod deployed carries uat-app-… AND prod-app-…; with only one
 * rule per stack, the FIRST matching stack rule alone decides it, so uat moving on would expire the
 * image prod still runs. So there is one rule per non-empty SET of stacks, larger sets first: an
 * image is decided by the rule for exactly the set of stacks that deployed it, which keeps the
 * newest `count` images carrying all those stacks' tags. That set is a subset of each single
 * stack's, so an image inside ANY of its stacks' windows is inside this one: an image a stack
 * deployed stays while it is within that stack's window, whatever other stacks push.
 * (2^k - 1 rules per prefix for k stacks: config allows at most 4 stacks.)
 * Base layers an app image still references are not lost when a deps-… manifest expires: ECR
 * keeps a layer while any remaining image references it.
 */

/** One "keep the newest N" rule. */
export interface KeepRule {
    /** Tag prefix the rule applies to, e.g. "app-". */
    readonly tagPrefix: string;
    /** Tagged images with that prefix to keep (the newest by push time). */
    readonly count: number;
}

export interface LifecyclePolicyOptions {
    /** Days after which untagged images expire. @default 1 */
    readonly untaggedDays?: number;
    /** Keep-the-newest rules, one per tag prefix. */
    readonly keep: readonly KeepRule[];
    /**
     * Stacks whose deploys carry keep tags `<stack>-<tagPrefix>…`; each gets its own window of
     * `count` per prefix (see the module comment). @default [] (only the shared count rule)
     */
    readonly stacks?: readonly string[];
}

/** Every non-empty subset of `items`, larger first; equal sizes in `items` order (pure). */
export function stackSets(items: readonly string[]): string[][] {
    const sets: string[][] = [];
    for (let mask = 1; mask < 1 << items.length; mask++) sets.push(items.filter((_, i) => (mask & (1 << i)) !== 0));
    const key = (set: string[]) => set.map((x) => String(items.indexOf(x)).padStart(3, "0")).join(",");
    return sets.sort((a, b) => b.length - a.length || key(a).localeCompare(key(b)));
}

/** The policy document shape ECR accepts (`aws.ecr.LifecyclePolicy` `policy`). */
export interface LifecyclePolicyDocument {
    rules: {
        rulePriority: number;
        description: string;
        selection: {
            tagStatus: "untagged" | "tagged";
            tagPrefixList?: string[];
            countType: "sinceImagePushed" | "imageCountMoreThan";
            countUnit?: "days";
            countNumber: number;
        };
        action: { type: "expire" };
    }[];
}

/** Builds the lifecycle policy document (pure). */
export function buildLifecyclePolicy(opts: LifecyclePolicyOptions): LifecyclePolicyDocument {
    const untaggedDays = opts.untaggedDays ?? 1;
    const rules: LifecyclePolicyDocument["rules"] = [
        {
            rulePriority: 1,
            description: `Expire untagged images after ${untaggedDays} day(s)`,
            selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: untaggedDays },
            action: { type: "expire" },
        },
    ];
    for (const rule of opts.keep) {
        for (const set of stackSets(opts.stacks ?? [])) {
            const prefixes = set.map((stack) => `${stack}-${rule.tagPrefix}`);
            rules.push({
                rulePriority: rules.length + 1,
                description: `Keep the newest ${rule.count} images deployed by ${set.join(" and ")} (tagged ${prefixes.map((x) => `${x}*`).join(" and ")})`,
                selection: { tagStatus: "tagged", tagPrefixList: prefixes, countType: "imageCountMoreThan", countNumber: rule.count },
                action: { type: "expire" },
            });
        }
        rules.push({
            rulePriority: rules.length + 1,
            description: `Keep the newest ${rule.count} images tagged ${rule.tagPrefix}*`,
            selection: { tagStatus: "tagged", tagPrefixList: [rule.tagPrefix], countType: "imageCountMoreThan", countNumber: rule.count },
            action: { type: "expire" },
        });
    }
    return { rules };
}
