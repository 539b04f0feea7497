// A keyless client on npm mppx 0.11.0 with a short lightning charge method (mppx ships none):
// mppx parses the 402, picks the Payment challenge, builds the credential and reads the receipt;
// the method pays the invoice through PAY_URL (the test's dev wallet) and returns the preimage.
// Usage: node mppx_client.mjs URL JSON_BODY PAY_URL  -> prints {status, receipt, body} as JSON.
import { Credential, Method, Receipt, z } from 'mppx'
import { Mppx } from 'mppx/client'

const [url, body, payUrl] = process.argv.slice(2)

const lightningCharge = Method.from({
  name: 'lightning',
  intent: 'charge',
  schema: {
    credential: { payload: z.object({ preimage: z.string() }) },
    request: z.object({
      amount: z.string(),
      currency: z.string(),
      description: z.optional(z.string()),
      methodDetails: z.object({
        invoice: z.string(),
        paymentHash: z.optional(z.string()),
        network: z.optional(z.string()),
      }),
    }),
  },
})

const rawFetch = globalThis.fetch
const lightning = Method.toClient(lightningCharge, {
  async createCredential({ challenge }) {
    const paid = await rawFetch(payUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bolt11: challenge.request.methodDetails.invoice }),
    })
    const { preimage } = await paid.json()
    return Credential.serialize({ challenge, payload: { preimage } })
  },
})

const mppx = Mppx.create({ methods: [lightning], polyfill: false })
const res = await mppx.fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body,
})
const receipt = res.headers.get('payment-receipt') ? Receipt.fromResponse(res) : null
console.log(JSON.stringify({ status: res.status, receipt, body: await res.json() }))
