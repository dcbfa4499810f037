import { test } from "node:test";
import assert from "node:assert/strict";
import { buildLifecyclePolicy, stackSets } from "../../components/lifecyclePolicy";
import { lifecycleProblems } from "../../policy/checks";

void test("lifecycle: untagged expire after a day, the newest N tagged images per prefix kept", () => {
    assert.deepEqual(buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 50 }] }), {
        rules: [
            {
                rulePriority: 1,
                description: "Expire untagged images after 1 day(s)",
                selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
                action: { type: "expire" },
            },
            {
                rulePriority: 2,
                description: "Keep the newest 50 images tagged app-*",
                selection: { tagStatus: "tagged", tagPrefixList: ["app-"], countType: "imageCountMoreThan", countNumber: 50 },
                action: { type: "expire" },
            },
        ],
    });
});

void test("lifecycle: one rule per prefix, priorities in order, untagged days configurable", () => {
    const doc = buildLifecyclePolicy({
        untaggedDays: 3,
        keep: [
            { tagPrefix: "app-", count: 7 },
            { tagPrefix: "deps-", count: 4 },
        ],
    });
    assert.deepEqual(
        doc.rules.map((r) => [r.rulePriority, r.selection.tagPrefixList?.[0] ?? "untagged", r.selection.countNumber]),
        [
            [1, "untagged", 3],
            [2, "app-", 7],
            [3, "deps-", 4],
        ],
    );
    // Every tagged rule names a prefix: tags outside them (pushed by hand) are never expired.
    assert.ok(doc.rules.filter((r) => r.selection.tagStatus === "tagged").every((r) => (r.selection.tagPrefixList ?? []).length === 1));
});

const rule = (rulePriority: number, description: string, tagPrefixList: string[], countNumber: number) => ({
    rulePriority,
    description,
    selection: { tagStatus: "tagged", tagPrefixList, countType: "imageCountMoreThan", countNumber },
    action: { type: "expire" },
});

void test("lifecycle with stacks: per set of stacks a keep rule (larger sets first), all before the shared count rule", () => {
    assert.deepEqual(buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 50 }], stacks: ["uat", "prod"] }), {
        rules: [
            {
                rulePriority: 1,
                description: "Expire untagged images after 1 day(s)",
                selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
                action: { type: "expire" },
            },
            rule(2, "Keep the newest 50 images deployed by uat and prod (tagged uat-app-* and prod-app-*)", ["uat-app-", "prod-app-"], 50),
            rule(3, "Keep the newest 50 images deployed by uat (tagged uat-app-*)", ["uat-app-"], 50),
            rule(4, "Keep the newest 50 images deployed by prod (tagged prod-app-*)", ["prod-app-"], 50),
            rule(5, "Keep the newest 50 images tagged app-*", ["app-"], 50),
        ],
    });
    const base = buildLifecyclePolicy({ keep: [{ tagPrefix: "deps-", count: 10 }], stacks: ["prod"] });
    assert.deepEqual(base.rules.slice(1), [
        rule(2, "Keep the newest 10 images deployed by prod (tagged prod-deps-*)", ["prod-deps-"], 10),
        rule(3, "Keep the newest 10 images tagged deps-*", ["deps-"], 10),
    ]);
});

void test("stackSets: every non-empty subset once, larger first, list order within a size", () => {
    assert.deepEqual(stackSets(["a", "b", "c"]), [["a", "b", "c"], ["a", "b"], ["a", "c"], ["b", "c"], ["a"], ["b"], ["c"]]);
    assert.deepEqual(stackSets([]), []);
    assert.equal(stackSets(["a", "b", "c", "d"]).length, 15);
});

/**
 * A model of ECR's documented evaluation (rules in priority order; a rule with prefixes P selects
 * images having, for every p in P, a tag starting with p; imageCountMoreThan ranks the selected
 * images by push time, newest first, including images a higher rule already matched; an image
 * matched by a higher rule is never expired by a lower one). Returns the expired image ids.
 */
function ecrExpired(doc: ReturnType<typeof buildLifecyclePolicy>, images: { id: number; pushed: number; tags: string[] }[]): Set<number> {
    const decided = new Set<number>();
    const expired = new Set<number>();
    for (const r of [...doc.rules].sort((a, b) => a.rulePriority - b.rulePriority)) {
        const s = r.selection;
        if (s.tagStatus !== "tagged") continue;
        const selected = images.filter((im) => (s.tagPrefixList ?? []).every((p) => im.tags.some((t) => t.startsWith(p)))).sort((a, b) => b.pushed - a.pushed);
        selected.forEach((im, rank) => {
            if (!decided.has(im.id) && rank >= s.countNumber) expired.add(im.id);
        });
        for (const im of selected) decided.add(im.id);
    }
    return expired;
}

void test("an image prod runs stays while within prod's window, however many images uat deploys after it", () => {
    const doc = buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 3 }], stacks: ["uat", "prod"] });
    // Image 0: deployed by uat, then by prod. Then uat deploys 10 more; prod none.
    const images = [{ id: 0, pushed: 0, tags: ["app-0", "uat-app-0", "prod-app-0"] }];
    for (let i = 1; i <= 10; i++) images.push({ id: i, pushed: i, tags: [`app-${i}`, `uat-app-${i}`] });
    const expired = ecrExpired(doc, images);
    assert.equal(expired.has(0), false, "prod's image kept");
    assert.deepEqual(
        [...expired].sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6, 7],
        "uat keeps its newest 3 (8, 9, 10)",
    );
    // Without the stack rules (the old policy), prod's image would have gone.
    assert.equal(ecrExpired(buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 3 }] }), images).has(0), true);
    // With one rule per stack only (no rule for the set {uat, prod}), uat's rule would expire it.
    const perStackOnly = { rules: doc.rules.filter((r) => (r.selection.tagPrefixList ?? []).length < 2) };
    assert.equal(ecrExpired(perStackOnly, images).has(0), true);
    // Once prod has deployed 3 newer images, it is outside prod's window too, and expires.
    for (let i = 11; i <= 13; i++) images.push({ id: i, pushed: i, tags: [`app-${i}`, `uat-app-${i}`, `prod-app-${i}`] });
    assert.equal(ecrExpired(doc, images).has(0), true);
});

void test("the policy pack's lifecycle check accepts the per-stack policy", () => {
    const doc = buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 50 }], stacks: ["uat", "prod"] });
    assert.deepEqual(lifecycleProblems("thinlayer/app", JSON.stringify(doc), 10), []);
    assert.equal(
        lifecycleProblems("thinlayer/app", JSON.stringify(buildLifecyclePolicy({ keep: [{ tagPrefix: "app-", count: 5 }], stacks: ["uat"] })), 10).length,
        2,
    );
});
