"""Everything after an event is a native dict, up to the SIEM.

    native dict ─ native|ecs|ocsf.format_event() ─ encoder (json by default)
                ─ Record (bytes + kind/severity/timestamp/hostname for framing)
                ─ QueuedSink.emit()  (bounded, never blocks)  ─ thread ─ Writer
                  Writers: JsonlWriter (jsonl.py), SyslogWriter over UDP/TCP/unix
                  (syslog.py), StdoutWriter (sinks.py)

How the daemon uses it:

    from sentinel.output.pipeline import Pipeline
    from sentinel.output.sinks import open_sinks

    sinks = open_sinks(args.output)            # UsageError on a bad SPEC, before loading
    pipeline = Pipeline(sinks, args.format)    # "native" | "ecs" | "ocsf"
    pipeline.emit(native_event)                # on the event loop; never blocks
    pipeline.stats()["dropped"]                # backpressure drops, for status/lost events
    pipeline.close(timeout=5.0)                # on SIGTERM: flush what it can in time
"""
