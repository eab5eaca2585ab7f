%% tlsecho: the Erlang/OTP peer of examples/tls-echo/tls_echo.c for
%% bench/net_run.py: an ssl echo server, one Erlang process per connection
%% (the acceptor hands each transport socket to a handler, which runs the
%% handshake, ssl:handshake/2, and a passive recv/send loop); OTP's
%% defaults otherwise (TLS 1.2-1.3, session tickets off).
%%
%%   erlc tlsecho.erl && erl -noshell -run tlsecho main PORT ADDRESS CERT KEY
%%
%% (port 0 picks one). The first line of output is `listening on ADDRESS:PORT`.
-module(tlsecho).
-export([main/1]).

main([P, A, Cert, Key]) ->
    ok = ssl:start(),
    {ok, Ip} = inet:parse_address(A),
    Opts = [binary, {ip, Ip}, {packet, raw}, {active, false}, {nodelay, true},
            {reuseaddr, true}, {backlog, 1024}, {certfile, Cert}, {keyfile, Key},
            {versions, ['tlsv1.3', 'tlsv1.2']}],
    case ssl:listen(list_to_integer(P), Opts) of
        {ok, L} ->
            {ok, {BoundIp, BoundPort}} = ssl:sockname(L),
            io:format("listening on ~s:~b~n", [inet:ntoa(BoundIp), BoundPort]),
            accept(L);
        {error, Why} ->
            io:format(standard_error, "tlsecho: cannot listen: ~p~n", [Why]),
            erlang:halt(1)
    end.

accept(L) ->
    case ssl:transport_accept(L) of
        {ok, T} ->
            Pid = spawn(fun() -> receive {go, S} -> serve(S) end end),
            case ssl:controlling_process(T, Pid) of
                ok -> Pid ! {go, T};
                _ -> ssl:close(T), exit(Pid, kill)
            end;
        {error, _} ->
            ok
    end,
    accept(L).

serve(T) ->
    case ssl:handshake(T, 10000) of
        {ok, S} -> loop(S);
        {error, _} -> ssl:close(T)
    end.

loop(S) ->
    case ssl:recv(S, 0) of
        {ok, Data} ->
            case ssl:send(S, Data) of
                ok -> loop(S);
                _ -> ssl:close(S)
            end;
        {error, _} ->
            ssl:close(S)
    end.
