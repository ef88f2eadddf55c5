/**
 * A secret config value (the wallet key). It prints as `[REDACTED]` through every path that turns objects into
 * text (toString, JSON, util.inspect, template strings); only `reveal()` gives the value, and only the
 * transaction manager calls it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[REDACTED]';
  }
  toJSON(): string {
    return '[REDACTED]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[REDACTED]';
  }
}
