import { Layer } from "effect"
import * as Service from "@walletun/infra/Service"
import * as App from "./App.ts"
import { UserConfig } from "./UserConfig.ts"

const Main = Service.serveHttp(App.routes, "USER_PORT", 8081).pipe(Layer.provide(UserConfig.layer))

Service.run("user", Main)
