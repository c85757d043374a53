import * as Service from "@walletun/infra/Service"
import * as App from "./App.ts"

Service.run("gateway", Service.serveHttp(App.routes, "GATEWAY_PORT", 8080, "public"))
