http://my_host.example-1.com
alice
%u
alice