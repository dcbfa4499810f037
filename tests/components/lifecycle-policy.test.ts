import { test } from "node:test";
import assert from "node:assert/strict";
import { buildLifecyclePolicy } from "../../components/lifecyclePolicy";

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
    const doc = buildLifecyclePolicy({ untaggedDays: 3, keep: [{ tagPrefix: "app-", count: 7 }, { tagPrefix: "deps-", count: 4 }] });
    assert.deepEqual(doc.rules.map((r) => [r.rulePriority, r.selection.tagPrefixList?.[0] ?? "untagged", r.selection.countNumber]), [[1, "untagged", 3], [2, "app-", 7], [3, "deps-", 4]]);
    // Every tagged rule names a prefix: tags outside them (pushed by hand) are never expired.
    assert.ok(doc.rules.filter((r) => r.selection.tagStatus === "tagged").every((r) => (r.selection.tagPrefixList ?? []).length === 1));
});
