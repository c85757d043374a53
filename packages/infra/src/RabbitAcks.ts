/**
 * Settles the deliveries of one consumer channel with as few frames as it can. Acks are coalesced:
 * once per turn of the event loop, the longest run of acked deliveries from the oldest one still
 * outstanding goes out as one ack with `multiple` (the broker settles every delivery up to that
 * tag). A delivery acked behind one still in flight is acked on its own in the same turn, so a
 * slow handler never holds the others' acks back (nor the prefetch window they free). Nacks go
 * out at once, each on its own; the broker then no longer counts them as outstanding, so a later
 * `multiple` ack never covers them.
 */

/** What the acker needs of a delivery (amqplib's `ConsumeMessage`). */
export interface Delivery {
  readonly fields: { readonly deliveryTag: number }
}

/** What the acker needs of a channel (amqplib's `Channel`). */
export interface AckChannel<D extends Delivery> {
  ack(message: D, allUpTo?: boolean): void
  nack(message: D, allUpTo?: boolean, requeue?: boolean): void
}

export interface Acker<D extends Delivery> {
  /** Records a delivery, in the order the channel delivered it. */
  readonly delivered: (message: D) => void
  /** Acks the delivery, with the next flush (this turn of the event loop). */
  readonly ack: (message: D) => void
  /** Nacks the delivery now. Throws what the channel throws (a closed channel). */
  readonly nack: (message: D, requeue: boolean) => void
  /** Sends every ack recorded so far now. Throws what the channel throws (a closed channel). */
  readonly flush: () => void
  /** Deliveries recorded and not yet settled on the wire. */
  readonly outstanding: () => number
}

/**
 * An acker over `channel`. `schedule` runs a flush later in this turn (`setImmediate` by default);
 * `onFlushError` hears what a scheduled flush threw (the channel closed under it: the broker
 * delivers those messages again).
 */
export const make = <D extends Delivery>(
  channel: AckChannel<D>,
  onFlushError: (error: unknown) => void,
  schedule: (flush: () => void) => void = (flush) => void setImmediate(flush),
): Acker<D> => {
  // Deliveries not yet settled on the wire, oldest first (delivery tags rise on a channel).
  let outstanding: Array<D> = []
  const acked = new Set<number>()
  let scheduled = false

  const flush = () => {
    scheduled = false
    if (acked.size === 0) return
    let run = 0
    while (run < outstanding.length && acked.has(outstanding[run]!.fields.deliveryTag)) run++
    const last = run > 0 ? outstanding[run - 1] : undefined
    const rest = outstanding.slice(run)
    const behind = rest.filter((message) => acked.has(message.fields.deliveryTag))
    outstanding = behind.length === 0 ? rest : rest.filter((message) => !acked.has(message.fields.deliveryTag))
    acked.clear()
    if (last !== undefined) channel.ack(last, true)
    for (const message of behind) channel.ack(message, false)
  }

  return {
    delivered: (message) => {
      outstanding.push(message)
    },
    ack: (message) => {
      acked.add(message.fields.deliveryTag)
      if (scheduled) return
      scheduled = true
      schedule(() => {
        try {
          flush()
        } catch (error) {
          onFlushError(error)
        }
      })
    },
    nack: (message, requeue) => {
      const tag = message.fields.deliveryTag
      outstanding = outstanding.filter((other) => other.fields.deliveryTag !== tag)
      acked.delete(tag)
      channel.nack(message, false, requeue)
    },
    flush,
    outstanding: () => outstanding.length,
  }
}
