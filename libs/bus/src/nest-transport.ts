// NestJS over the Bus: services declare @EventPattern(subject pattern) for durable consumers and
// @MessagePattern(command pattern) for request/reply; BusClientProxy sends.
import { BaseRpcContext, ClientProxy, EventPattern, Server, type CustomTransportStrategy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { lastValueFrom, isObservable } from 'rxjs';
import type { Bus, BusSubscription, HandlerOutcome, ReceivedMessage } from './bus';
import { subjectMatches } from './partition';
import type { CommandSpec, ConsumerSpec } from './subjects';

/**
 * @EventPattern for a bus subject pattern; unlike Nest's own typing it allows a typed
 * `@Ctx() context: BusContext` parameter after the payload.
 */
export const BusEventPattern = (subjectPattern: string): MethodDecorator => EventPattern(subjectPattern) as MethodDecorator;

export class BusContext extends BaseRpcContext<[ReceivedMessage<unknown>]> {
  get message(): ReceivedMessage<unknown> {
    return this.args[0];
  }
  /** For long work: keeps the message from being redelivered. */
  working(): void {
    this.args[0].working();
  }
}

export interface BusTransportOptions {
  bus: Bus;
  /** Durable consumers this replica runs; each goes to the @EventPattern whose pattern covers its filter. */
  consumers: ConsumerSpec[];
  /** Commands this replica serves; each goes to the @MessagePattern equal to its pattern. */
  commands?: CommandSpec<unknown, unknown>[];
}

export class BusTransport extends Server implements CustomTransportStrategy {
  private readonly subscriptions: BusSubscription[] = [];

  constructor(private readonly options: BusTransportOptions) {
    super();
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      await this.options.bus.start();
      for (const consumer of this.options.consumers) {
        const handler = this.eventHandlerFor(consumer.filterSubject);
        this.subscriptions.push(
          await this.options.bus.consume(consumer, async (message) => {
            const result = await handler(message.data, new BusContext([message]));
            const value = isObservable(result) ? await lastValueFrom(result, { defaultValue: undefined }) : result;
            return value as HandlerOutcome | void;
          }),
        );
      }
      for (const command of this.options.commands ?? []) {
        const handler = this.messageHandlers.get(command.pattern);
        if (!handler || handler.isEventHandler) throw new Error(`no @MessagePattern('${command.pattern}') for command ${command.queueGroup}`);
        this.subscriptions.push(
          await this.options.bus.serve(command, async (request) => {
            const result = await handler(request);
            return isObservable(result) ? lastValueFrom(result) : result;
          }),
        );
      }
      callback();
    } catch (error) {
      callback(error);
    }
  }

  private eventHandlerFor(filterSubject: string) {
    for (const [pattern, handler] of this.messageHandlers) {
      if (handler.isEventHandler && subjectMatches(pattern, filterSubject.replace(/[*>]/g, '_'))) return handler;
    }
    throw new Error(`no @EventPattern covers consumer subject ${filterSubject}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
  }

  on(): never {
    throw new Error('BusTransport has no events');
  }
  unwrap<T>(): T {
    return this.options.bus as T;
  }
}

/** A record for emit(): the message ID the bus dedupes on. */
export class BusRecord<T> {
  constructor(
    readonly data: T,
    readonly messageId: string,
  ) {}
}

/** ClientProxy over the Bus: emit(subject, new BusRecord(data, id)) publishes, send(subject, data) requests. */
export class BusClientProxy extends ClientProxy {
  constructor(private readonly bus: Bus) {
    super();
  }
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  unwrap<T>(): T {
    return this.bus as T;
  }
  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    this.bus.request(packet.pattern as string, packet.data).then(
      (response) => callback({ response, isDisposed: true }),
      (err: Error) => callback({ err: err.message, isDisposed: true }),
    );
    return () => undefined;
  }
  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    if (!(packet.data instanceof BusRecord)) throw new Error('emit() needs a BusRecord carrying the message ID');
    return (await this.bus.publish(packet.pattern as string, packet.data.data, { messageId: packet.data.messageId })) as T;
  }
}
