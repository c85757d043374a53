/**
 * One request to walletun's public API, as the workshop's clients and the gateway's tests send it:
 * the method, a JSON body with its content type, a bearer token and any extra headers; and the
 * answer's text read as a JSON object.
 */

/** What a call adds to its method and path. */
export interface RequestOptions {
  readonly token?: string | undefined
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** The method, headers and body of one request (for `fetch`, a `Request` or undici). */
export const requestInit = (method: string, options: RequestOptions = {}) => ({
  method,
  headers: {
    ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
    ...options.headers,
  },
  ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
})

/** An answer's text as a JSON object: empty when there was none, or it was not JSON, or not an object. */
export const jsonObject = (text: string): Record<string, unknown> => {
  try {
    const parsed: unknown = text === "" ? {} : JSON.parse(text)
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {}
  } catch {
    // Not JSON (a proxy's error page, say): the status alone names the answer.
    return {}
  }
}
