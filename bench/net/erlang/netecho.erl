%% netecho: the Erlang/OTP peer of examples/echo/echo.c for bench/net_run.py:
%% a gen_tcp echo server, one Erlang process per connection, passive sockets
%% ({active,false}) in a recv/send loop; packet raw, nodelay true.
%%
%%   erlc netecho.erl && erl -noshell -run netecho main [PORT [ADDRESS]]
%%
%% (default 7000 127.0.0.1; port 0 picks one). The first line of output is
%% `listening on ADDRESS:PORT`. As in the wisp example the acceptor accepts,
%% spawns a handler and hands the socket over to it.
-module(netecho).
-export([main/0, main/1]).

main() -> main([]).

main(Args) ->
    {Port, Addr} = case Args of
                       [] -> {7000, "127.0.0.1"};
                       [P] -> {list_to_integer(P), "127.0.0.1"};
                       [P, A | _] -> {list_to_integer(P), A}
                   end,
    {ok, Ip} = inet:parse_address(Addr),
    case gen_tcp:listen(Port, [binary, {ip, Ip}, {packet, raw}, {active, false},
                               {nodelay, true}, {reuseaddr, true}, {backlog, 1024}]) of
        {ok, L} ->
            {ok, {BoundIp, BoundPort}} = inet:sockname(L),
            io:format("listening on ~s:~b~n", [inet:ntoa(BoundIp), BoundPort]),
            accept(L);
        {error, Why} ->
            io:format(standard_error, "netecho: cannot listen on ~s:~b: ~p~n",
                      [Addr, Port, Why]),
            erlang:halt(1)
    end.

accept(L) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            Pid = spawn(fun() -> receive {go, Sock} -> loop(Sock) end end),
            case gen_tcp:controlling_process(S, Pid) of
                ok -> Pid ! {go, S};
                _ -> gen_tcp:close(S), exit(Pid, kill)
            end;
        {error, _} ->
            ok
    end,
    accept(L).

loop(S) ->
    case gen_tcp:recv(S, 0) of
        {ok, Data} ->
            case gen_tcp:send(S, Data) of
                ok -> loop(S);
                _ -> gen_tcp:close(S)
            end;
        {error, _} ->
            gen_tcp:close(S)
    end.
