/**
 * Checks for free text that clients send: well-formed Unicode (no lone surrogate, which would be
 * stored as U+FFFD and read back as something else) and no control characters where a name or an
 * address cannot hold one (PostgreSQL refuses NUL outright).
 */
import { Schema } from "effect"

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const controlCharacter = /[\u0000-\u001F\u007F]/
// oxlint-disable-next-line no-control-regex -- matching NUL is the point
const nul = /\u0000/

/** Well-formed Unicode: every surrogate is part of a pair. */
export const isWellFormed = (what: string) =>
  Schema.makeFilter((s: string) => !loneSurrogate.test(s), { message: `${what} must be well-formed Unicode text` })

/** No C0 control character and no DEL (names, addresses). */
export const hasNoControlCharacters = (what: string) =>
  Schema.makeFilter((s: string) => !controlCharacter.test(s), {
    message: `${what} must not contain control characters`,
  })

/** No NUL character (free text that may hold line breaks and tabs). */
export const hasNoNul = (what: string) =>
  Schema.makeFilter((s: string) => !nul.test(s), { message: `${what} must not contain a NUL character` })
