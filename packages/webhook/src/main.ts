import * as Service from "@walletun/infra/Service"
import * as App from "./App.ts"

// The whole composition lives in App.ts.
Service.run("webhook", App.layer)
