import * as Service from "@walletun/infra/Service"
import * as App from "./App.ts"

// The API on HOST; its metrics on INTERNAL_HOST, apart from it.
Service.run("gateway", Service.servePublic(App.routes, "GATEWAY_PORT", 8080, "GATEWAY_METRICS_PORT"))
