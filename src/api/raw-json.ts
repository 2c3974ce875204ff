// A response body serialised already: JSON whose integers need all 64 bits (FUSE node ids and request uniques, spec
// nydusd-runtime.md 3.5.8), which JSON.stringify of JavaScript numbers would round.

export class RawJson {
  constructor(readonly text: string) {}
}
