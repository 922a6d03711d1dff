http:example.com
bob
devices/%u/#
devices/bob/x