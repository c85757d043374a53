/**
 * What the bank test accepts as a refusal: the API's 502, 503 and 504 problem details (the load
 * balancer's own answers included), and nothing else.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Api from "../chaos/src/api.ts"
import * as LoadBalancer from "../src/LoadBalancer.ts"

const answer = (
  status: number,
  body: Record<string, unknown>,
  contentType = "application/problem+json",
): Api.Answer => ({
  status,
  contentType,
  replayed: false,
  text: JSON.stringify(body),
  body,
})

const problem = (status: number) => ({ type: "https://walletun.dev/problems/x", title: "x", status, code: "X" })

describe("refusals", () => {
  it("the load balancer's 502, 503 and 504 are refusals a client retries", () => {
    for (const { status, response } of LoadBalancer.errorResponses()) {
      const [head = "", text = ""] = response.split("\r\n\r\n")
      const contentType = /content-type: (.+)/i.exec(head)?.[1] ?? ""
      assert.isUndefined(Api.refusalDefect(answer(status, JSON.parse(text), contentType)), `${status}`)
    }
  })

  it("any other status, a body that is not problem details, or one that names an internal is not", () => {
    assert.strictEqual(Api.refusalDefect(answer(500, problem(500))), "status 500 (only 502, 503, 504 are refusals)")
    assert.strictEqual(Api.refusalDefect(answer(503, problem(503), "text/html")), 'content type "text/html"')
    assert.strictEqual(Api.refusalDefect(answer(502, problem(503))), "problem details without the matching status")
    assert.match(
      Api.refusalDefect(answer(504, { ...problem(504), detail: "CqlError: timeout" })) ?? "",
      /internal detail "CqlError"/,
    )
  })
})
