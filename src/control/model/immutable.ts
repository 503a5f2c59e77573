/**
 * Deeply readonly view of a value inferred from a Zod schema, so domain values handed out by
 * the model and the store cannot be changed in place (a change goes through the store).
 */
export type Immutable<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly (infer U)[]
    ? readonly Immutable<U>[]
    : T extends object
      ? { readonly [K in keyof T]: Immutable<T[K]> }
      : T;
