import { Service } from "@walletun/infra"
import * as App from "./App.ts"

Service.run("gateway", Service.serveHttp(App.routes, "GATEWAY_PORT", 8080))
