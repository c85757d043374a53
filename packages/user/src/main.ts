import { Layer } from "effect"
import { Service } from "@walletun/infra"
import * as App from "./App.ts"
import { Passwords } from "./Passwords.ts"
import { UserConfig } from "./UserConfig.ts"

const Main = Service.serveHttp(App.routes(Passwords.layer), "USER_PORT", 8081).pipe(Layer.provide(UserConfig.layer))

Service.run("user", Main)
