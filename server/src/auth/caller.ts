/** What a key may do: run models, train them, or administer the server (keys, the public models). */
export type Role = "predict" | "train" | "admin";

export const ROLES: readonly Role[] = ["predict", "train", "admin"];

/** The authenticated identity of a call, resolved once from its key; handlers never parse credentials. */
export interface Caller {
  /** The key's id (never its secret); "local" when authentication is off. */
  readonly keyId: string;
  /** The tenant whose models the caller reaches besides the public ones; undefined for the operator. */
  readonly tenant: string | undefined;
  readonly roles: ReadonlySet<Role>;
}

/** The caller of every call when authentication is off: the operator, with every role. */
export const LOCAL_CALLER: Caller = { keyId: "local", tenant: undefined, roles: new Set(ROLES) };
