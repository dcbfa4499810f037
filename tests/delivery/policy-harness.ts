/**
 * Calls the policy pack's policies the way @pulumi/policy's analyzer server does (server.js
 * makeAnalyzeRpcFun / makeAnalyzeStackRpcFun): skip disabled policies, honour the fast type filter
 * a validateResourceOfType function carries (`__pulumiType`), build the args bag (type, props, urn,
 * name, opts, stackTags, isType, asType, getConfig, notApplicable), collect reportViolation calls,
 * and treat a notApplicable() throw as "does not apply". No gRPC and no engine: the policies run
 * in-process on the resources a test or the mocked program gives.
 */
import type {
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
} from "@pulumi/policy";

export interface Violation {
    policy: string;
    enforcementLevel: EnforcementLevel;
    message: string;
    urn?: string;
}

export interface HarnessResource {
    type: string;
    name: string;
    props: Record<string, unknown>;
    urn?: string;
    parent?: string;
    dependencies?: string[];
}

type AnyPolicy = ResourceValidationPolicy | StackValidationPolicy;
type PolicyConfig = Record<string, Record<string, unknown>>;

class NotApplicable extends Error {}

const urnOf = (r: HarnessResource) => r.urn ?? `urn:pulumi:test::thinlayer::${r.type}::${r.name}`;

function opts(parent?: string): PolicyResourceOptions {
    return {
        protect: false,
        ignoreChanges: [],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
        parent,
    };
}

/** The type token validateResourceOfType attaches to its function (and SDK classes carry). */
function getPulumiType(obj: unknown): string | undefined {
    const t = (obj as { __pulumiType?: unknown } | undefined)?.__pulumiType;
    return typeof t === "string" && t.length > 0 ? t : undefined;
}

/** Same test as the server's isTypeOf: the class's `__pulumiType` token equals the resource type. */
function isTypeOf(type: string, cls: unknown): boolean {
    return getPulumiType(cls) === type;
}

function levelOf(p: AnyPolicy, config: PolicyConfig): EnforcementLevel {
    return (config[p.name]?.enforcementLevel as EnforcementLevel | undefined) ?? p.enforcementLevel ?? "advisory";
}

function getConfigFor(name: string, config: PolicyConfig) {
    return <T extends object>(): T => {
        const { enforcementLevel: _drop, ...rest } = config[name] ?? {};
        return rest as T;
    };
}

/** Runs every resource policy on one resource, as the engine's Analyze call does. */
export async function analyzeResource(policies: AnyPolicy[], r: HarnessResource, config: PolicyConfig = {}): Promise<Violation[]> {
    const out: Violation[] = [];
    for (const p of policies) {
        const level = levelOf(p, config);
        if (level === "disabled" || !("validateResource" in p) || p.validateResource === undefined) continue;
        const validations = Array.isArray(p.validateResource) ? p.validateResource : [p.validateResource];
        if (validations.length === 1 && getPulumiType(validations[0]) !== undefined && getPulumiType(validations[0]) !== r.type) continue;
        for (const validate of validations) {
            const args = {
                type: r.type,
                props: r.props,
                urn: urnOf(r),
                name: r.name,
                opts: opts(r.parent),
                stackTags: new Map<string, string>(),
                isType: (cls: unknown) => isTypeOf(r.type, cls),
                asType: (cls: unknown) => (isTypeOf(r.type, cls) ? r.props : undefined),
                getConfig: getConfigFor(p.name, config),
                notApplicable: (reason?: string): never => {
                    throw new NotApplicable(reason);
                },
            } as unknown as ResourceValidationArgs;
            try {
                await validate(args, (message: string) => out.push({ policy: p.name, enforcementLevel: level, message, urn: urnOf(r) }));
            } catch (e) {
                if (!(e instanceof NotApplicable)) throw e;
            }
        }
    }
    return out;
}

/** Runs every stack policy over all resources, as the engine's AnalyzeStack call does. */
export async function analyzeStack(policies: AnyPolicy[], resources: HarnessResource[], config: PolicyConfig = {}): Promise<Violation[]> {
    const byUrn = new Map<string, PolicyResource>();
    const list: PolicyResource[] = resources.map((r) => {
        const pr = {
            type: r.type,
            props: r.props,
            urn: urnOf(r),
            name: r.name,
            opts: opts(r.parent),
            dependencies: [] as PolicyResource[],
            propertyDependencies: {},
            isType: (cls: unknown) => isTypeOf(r.type, cls),
            asType: (cls: unknown) => (isTypeOf(r.type, cls) ? r.props : undefined),
        } as unknown as PolicyResource;
        byUrn.set(pr.urn, pr);
        return pr;
    });
    resources.forEach((r, i) => {
        const pr = list[i] as { parent?: PolicyResource; dependencies: PolicyResource[] };
        if (r.parent !== undefined) pr.parent = byUrn.get(r.parent);
        pr.dependencies = (r.dependencies ?? []).map((u) => byUrn.get(u)).filter((x): x is PolicyResource => x !== undefined);
    });
    const out: Violation[] = [];
    for (const p of policies) {
        const level = levelOf(p, config);
        if (level === "disabled" || !("validateStack" in p)) continue;
        try {
            await p.validateStack(
                {
                    resources: list,
                    stackTags: new Map(),
                    getConfig: getConfigFor(p.name, config),
                    notApplicable: (reason?: string): never => {
                        throw new NotApplicable(reason);
                    },
                },
                (message: string, urn?: string) => out.push({ policy: p.name, enforcementLevel: level, message, urn }),
            );
        } catch (e) {
            if (!(e instanceof NotApplicable)) throw e;
        }
    }
    return out;
}

/** Resource policies over each resource, then the stack policies over all of them. */
export async function analyzeAll(policies: AnyPolicy[], resources: HarnessResource[], config: PolicyConfig = {}): Promise<Violation[]> {
    const out: Violation[] = [];
    for (const r of resources) out.push(...(await analyzeResource(policies, r, config)));
    out.push(...(await analyzeStack(policies, resources, config)));
    return out;
}
